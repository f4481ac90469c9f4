"""django-allauth's routes, its reset-from-key view replaced by the README's
recipe (laid out as the README writes it)."""

from django.urls import include, path, re_path

from project.urls import urlpatterns as demo_urlpatterns

from .allauth_views import ResetFromKeyView

# fmt: off
urlpatterns = [
    re_path(r"^accounts/password/reset/key/(?P<uidb36>[0-9A-Za-z]+)-(?P<key>.+)/$",
            ResetFromKeyView.as_view(), name="account_reset_password_from_key"),
    path("accounts/", include("allauth.urls")),
    *demo_urlpatterns,
]
# fmt: on
