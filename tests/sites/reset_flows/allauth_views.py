"""The README's django-allauth recipe, as a site writes it."""

from allauth.account.views import PasswordResetFromKeyView

from betatel_reset.links import allauth_expired_link_redirect


class ResetFromKeyView(PasswordResetFromKeyView):
    def dispatch(self, request, uidb36, key, **kwargs):
        expired = allauth_expired_link_redirect(uidb36, key)
        return expired or super().dispatch(request, uidb36, key, **kwargs)
