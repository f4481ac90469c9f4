"""The demo's URLs plus Django's own password reset views under ``/accounts/``
(``PasswordResetView`` at ``/accounts/password_reset/``), for comparison."""

from django.urls import include, path

from project.urls import urlpatterns as demo_urlpatterns

urlpatterns = [*demo_urlpatterns, path("accounts/", include("django.contrib.auth.urls"))]
