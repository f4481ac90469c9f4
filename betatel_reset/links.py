"""Sending a user whose reset link failed to the expired page, safely.

Where a reset link fails, the user should land on the expired page, ideally
with their address filled in. The obvious code leaks: looking the user up from
the id in the link and redirecting with their address lets any visitor list
every user's address by trying ids. The rule here: **only a link that was
genuine and has expired reveals its address**. A link is genuine when its
token was made by the site's token generator for that user, as it is now
(same password, same last login, same address): the generator's own check,
run as if at the moment the token was made, says so. A forged, malformed or
already used link gets the flow's normal invalid-link page; nothing about the
user is in the response or a redirect.

Three flows:

* Django's ``PasswordResetConfirmView``: use :class:`ExpiredLinkPasswordResetConfirmView`
  (or call :func:`expired_link_redirect` from your own subclass).
* django-allauth's password reset from key: :func:`allauth_expired_link_redirect`
  at the top of your ``PasswordResetFromKeyView.dispatch``.
* Betatel's own link, landing on the site: the site cannot verify it (Betatel
  publishes neither its format nor a key to check it with), so
  :func:`betatel_link_landing` sends the user to the expired page *without* an
  address, whatever the link carries.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.tokens import PasswordResetTokenGenerator, default_token_generator
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import base36_to_int, urlencode

#: Where :func:`PasswordResetTokenGenerator._num_seconds` counts from.
_TOKEN_EPOCH = datetime.datetime(2001, 1, 1)


def expired_page_url(email: str | None = None) -> str:
    """The expired page's URL, with ``?email=`` when an address is given.

    The page moves the address out of the URL at once (see the README)."""
    url = reverse("betatel_reset:expired")
    return f"{url}?{urlencode({'email': email})}" if email else url


def reset_token_expired(
    user: Any,
    token: str,
    token_generator: PasswordResetTokenGenerator = default_token_generator,
) -> bool:
    """Whether ``token`` is one ``token_generator`` made for ``user`` that is no
    longer valid only because it is too old (``PASSWORD_RESET_TIMEOUT``).

    False for a valid token, a forged or malformed one, and one made before
    the user's password, last login or address changed (used links).
    """
    if user is None or not isinstance(token, str) or token.count("-") != 1:
        return False
    if token_generator.check_token(user, token):
        return False  # still valid: the normal flow
    try:
        made_at = _TOKEN_EPOCH + datetime.timedelta(seconds=base36_to_int(token.split("-")[0]))
    except (ValueError, OverflowError):
        return False
    # The generator's own check, run as if at the moment the token was made:
    # only the age check can differ, so this passes only for a genuine token.
    at_making = copy.copy(token_generator)
    at_making._now = lambda: made_at  # type: ignore[method-assign]  # its hook for tests
    return bool(at_making.check_token(user, token))


def user_address(user: AbstractBaseUser) -> str:
    """The address a user's reset email goes to (``EMAIL_FIELD``)."""
    return str(getattr(user, user.get_email_field_name(), "") or "")


def expired_link_redirect(
    user: Any,
    token: str,
    token_generator: PasswordResetTokenGenerator = default_token_generator,
    *,
    address: str | None = None,
) -> HttpResponseRedirect | None:
    """A redirect to the expired page with the user's address when the link was
    genuine and has expired; ``None`` otherwise (show the normal page)."""
    if user is None or not reset_token_expired(user, token, token_generator):
        return None
    return _no_trace(HttpResponseRedirect(expired_page_url(address or user_address(user))))


def _no_trace(response: HttpResponseRedirect) -> HttpResponseRedirect:
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


class ExpiredLinkPasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's ``PasswordResetConfirmView``; a genuine link that has expired
    goes to the expired page with the address filled in instead of the
    invalid-link page. Use it (or subclass it) where you route the confirm view::

        path("reset/<uidb64>/<token>/", ExpiredLinkPasswordResetConfirmView.as_view(),
             name="password_reset_confirm"),
    """

    def dispatch(self, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = super().dispatch(*args, **kwargs)
        if self.validlink or self.user is None:
            return response
        token = kwargs.get("token", "")
        if token == self.reset_url_token:  # the set-password step: the token is in the session
            token = self.request.session.get(auth_views.INTERNAL_RESET_SESSION_TOKEN, "")
        return expired_link_redirect(self.user, token, self.token_generator) or response


def allauth_expired_link_redirect(uidb36: str, key: str) -> HttpResponseRedirect | None:
    """For django-allauth's ``PasswordResetFromKeyView``: a redirect to the
    expired page with the address when ``uidb36``/``key`` is a genuine link that
    has expired, else ``None``. Call it first in your subclass's ``dispatch``::

        class ResetFromKeyView(PasswordResetFromKeyView):
            def dispatch(self, request, uidb36, key, **kwargs):
                expired = allauth_expired_link_redirect(uidb36, key)
                return expired or super().dispatch(request, uidb36, key, **kwargs)

    It uses allauth's own user lookup and token generator (its
    ``PASSWORD_RESET_TOKEN_GENERATOR``) and the address allauth sends to.
    """
    from allauth.account.forms import UserTokenForm
    from allauth.account.utils import url_str_to_user_pk, user_email
    from allauth.account.views import PasswordResetFromKeyView

    if key == PasswordResetFromKeyView.reset_url_key:
        return None  # the set-password step: allauth checks its session key
    user_model = get_user_model()
    try:
        user = user_model._default_manager.get(pk=url_str_to_user_pk(uidb36))
    except (ValueError, TypeError, OverflowError, ValidationError, user_model.DoesNotExist):
        return None
    generator = UserTokenForm.token_generator
    if not reset_token_expired(user, key, generator):
        return None
    return expired_link_redirect(user, key, generator, address=user_email(user))


@login_not_required
def betatel_link_landing(request: HttpRequest) -> HttpResponseRedirect:
    """Where Betatel's own reset link lands on the site once it has expired
    (route it yourself): the expired page, never with an address, because the
    site cannot tell a genuine Betatel link from a forged one."""
    return _no_trace(HttpResponseRedirect(expired_page_url()))
