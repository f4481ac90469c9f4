from django.apps import AppConfig, apps
from django.utils.translation import gettext_lazy as _


class BetatelResetConfig(AppConfig):
    name = "betatel_reset"
    verbose_name = _("Betatel password reset")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)

        if apps.is_installed("django.contrib.admin"):
            from .admin import auto_attach

            # Adds the resend actions to the site's registered user admin, now
            # or on the first request (see betatel_reset.admin).
            auto_attach()
