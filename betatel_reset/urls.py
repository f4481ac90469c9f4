"""Include under any prefix: ``path("reset-password/", include("betatel_reset.urls"))``."""

from django.urls import path

from . import views

app_name = "betatel_reset"

urlpatterns = [
    path("resend/", views.ResendView.as_view(), name="resend"),
    path("expired/", views.ExpiredLinkView.as_view(), name="expired"),
]
