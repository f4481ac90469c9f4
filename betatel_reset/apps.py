from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BetatelResetConfig(AppConfig):
    name = "betatel_reset"
    verbose_name = _("Betatel password reset")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
