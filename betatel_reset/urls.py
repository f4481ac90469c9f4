"""Include under any prefix: ``path("reset-password/", include("betatel_reset.urls"))``."""

from django.urls import path

from . import views

app_name = "betatel_reset"

urlpatterns = [
    path("resend/", views.ResendView.as_view(), name="resend"),
    path("expired/", views.ExpiredLinkView.as_view(), name="expired"),
    # A link typed or mangled without the slash: APPEND_SLASH would redirect it
    # with ?email= still in Location and no no-referrer. Served by the same
    # view, the address is taken out of the URL as on the slash spelling.
    path("expired", views.ExpiredLinkView.as_view()),
]
