"""A site's password reset routes, with the README's recipes from
betatel_reset.links in place (laid out as the README writes them)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from betatel_reset.links import ExpiredLinkPasswordResetConfirmView, betatel_link_landing
from project.urls import urlpatterns as demo_urlpatterns

# fmt: off
urlpatterns = [
    path("reset/<uidb64>/<token>/", ExpiredLinkPasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(),
         name="password_reset_complete"),
    path("betatel/reset-link/", betatel_link_landing, name="betatel_link_landing"),
    *demo_urlpatterns,
]
# fmt: on
