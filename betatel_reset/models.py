from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .choices import Outcome, Source


class ResendAttempt(models.Model):
    """One attempt to resend a reset email, whatever its outcome.

    Kept: when, the address (admins search by it and retry from it), where the
    attempt came from, which admin made it, the outcome, Betatel's HTTP status,
    how long it took, and a short description of a failure written by this app
    (never Betatel's raw answer, never the token). Not kept: IP addresses,
    user agents, request bodies or tokens. Old rows are removed with
    ``manage.py betatel_prune --older-than 90d``.
    """

    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    email = models.EmailField(_("address"), max_length=254, db_index=True)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    outcome = models.CharField(_("outcome"), max_length=32, choices=Outcome.choices, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    status_code = models.PositiveSmallIntegerField(_("Betatel status"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    detail = models.CharField(_("detail"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("resend attempt")
        verbose_name_plural = _("resend attempts")
        ordering = ["-created_at", "-id"]
        default_permissions = ("view",)
        permissions = [("send_reset_email", _("Can resend reset-password emails"))]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_outcome_display()})"
