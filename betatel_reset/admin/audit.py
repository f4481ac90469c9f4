"""The audit trail's admin: every attempt, read-only, with retry actions."""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib import admin, messages
from django.db.models import Max, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import texts
from ..addresses import unique_addresses
from ..choices import Outcome
from ..models import ResendAttempt
from .permissions import ReadOnlyAdmin, has_send_reset_email_permission
from .reporting import refuse_misconfigured, refuse_too_many, send_and_report
from .send_button import send_to_user_view
from .user_actions import clear_limits

#: A queued resend still unsent after this long has no worker sending it: a
#: worker sends within seconds, and retries end after QUEUED_RETRY_WINDOW.
STALE_AFTER = datetime.timedelta(minutes=5)


def stale_queued(attempts: QuerySet[ResendAttempt]) -> QuerySet[ResendAttempt]:
    """Attempts queued more than :data:`STALE_AFTER` ago and not sent since."""
    return attempts.filter(outcome=Outcome.QUEUED, created_at__lt=timezone.now() - STALE_AFTER)


class StaleQueuedFilter(admin.SimpleListFilter):
    title = _("queued delivery")
    parameter_name = "queued"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("stale", _("Queued, not sent after 5 minutes"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return stale_queued(queryset) if self.value() == "stale" else queryset


@admin.register(ResendAttempt)
class ResendAttemptAdmin(ReadOnlyAdmin, admin.ModelAdmin):  # type: ignore[type-arg]  # not generic at runtime
    """The audit trail, read-only: every attempt, searchable by address."""

    list_display = [
        "created_at",
        "email",
        "source",
        "outcome",
        "status_code",
        "duration_ms",
        "actor",
    ]
    list_filter = ["outcome", StaleQueuedFilter, "source", "created_at"]
    search_fields = ["email"]
    date_hierarchy = "created_at"
    list_select_related = ["actor"]
    list_per_page = 100
    actions = [
        "retry_failed_attempts",
        "retry_uncertain_attempts",
        "clear_rate_limits_for_addresses",
    ]

    has_send_reset_email_permission = has_send_reset_email_permission

    @admin.action(
        description=_("Retry selected failed attempts"), permissions=["send_reset_email"]
    )
    def retry_failed_attempts(
        self, request: HttpRequest, queryset: QuerySet[ResendAttempt]
    ) -> None:
        """Resend to the addresses of the selected failed attempts, once each,
        skipping those sent, or perhaps sent, since. Attempts that may have been
        sent are left out: resending them is :meth:`retry_uncertain_attempts`."""
        perhaps_sent = queryset.filter(outcome=Outcome.UNCERTAIN).count()
        if perhaps_sent:
            note = texts.format("uncertain_not_retried", count=perhaps_sent)
            self.message_user(request, note, messages.WARNING)
        failures = _latest(queryset.exclude(outcome__in=MAY_HAVE_SENT))
        if failures:
            _retry(self, request, failures, since=MAY_HAVE_SENT)
        elif not perhaps_sent:
            self.message_user(request, texts.format("none_failed"), messages.WARNING)

    @admin.action(
        description=_("Retry attempts that may have been sent"), permissions=["send_reset_email"]
    )
    def retry_uncertain_attempts(
        self, request: HttpRequest, queryset: QuerySet[ResendAttempt]
    ) -> None:
        """Resend to the addresses of the selected attempts that may have been
        sent (Betatel had the request, its answer never came), accepting that
        some get a second email. Once each, skipping those sent since."""
        uncertain = _latest(queryset.filter(outcome=Outcome.UNCERTAIN))
        if not uncertain:
            self.message_user(request, texts.format("none_uncertain"), messages.WARNING)
            return
        _retry(self, request, uncertain, since=[Outcome.SENT])

    @admin.action(
        description=_("Clear resend rate limits for these addresses"),
        permissions=["send_reset_email"],
    )
    def clear_rate_limits_for_addresses(
        self, request: HttpRequest, queryset: QuerySet[ResendAttempt]
    ) -> None:
        emails = queryset.order_by().values_list("email", flat=True).distinct()
        clear_limits(self, request, sorted(set(emails)))

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Warn, on every visit, of queued resends that no worker has sent."""
        stale = stale_queued(ResendAttempt.objects.all()).count()
        if stale and request.method == "GET":
            minutes = int(STALE_AFTER.total_seconds() // 60)
            text = texts.format("stale_queued", count=stale, minutes=minutes)
            self.message_user(request, text, messages.WARNING)
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list[URLPattern]:
        send = path(
            "send/<path:object_id>/",
            self.admin_site.admin_view(self.send_to_user_view),
            name="betatel_reset_resendattempt_send",
        )
        return [send, *super().get_urls()]

    def send_to_user_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return send_to_user_view(self, request, object_id)


#: Outcomes after which the email may be in the inbox: an attempt with one of
#: them after a failure means retrying that failure could send a second email.
#: A queued attempt is on its way, or its worker died perhaps mid-send.
MAY_HAVE_SENT = [Outcome.SENT, Outcome.UNCERTAIN, Outcome.QUEUED]


def _retry(
    model_admin: ResendAttemptAdmin,
    request: HttpRequest,
    latest: dict[str, Any],
    *,
    since: list[Outcome],
) -> None:
    """Send again to the addresses of ``latest`` (``{address: when}``), except
    those with an attempt ending in one of ``since`` after that."""
    later = _latest(ResendAttempt.objects.filter(email__in=latest, outcome__in=since))
    not_sent_since = [
        email for email, at in sorted(latest.items()) if email not in later or later[email] <= at
    ]
    addresses = list(unique_addresses(not_sent_since))
    if not addresses:
        model_admin.message_user(request, texts.format("nothing_to_retry"), messages.WARNING)
        return
    if refuse_misconfigured(model_admin, request) or refuse_too_many(
        model_admin, request, len(addresses)
    ):
        return
    send_and_report(model_admin, request, addresses, len(latest) - len(addresses))


def _latest(attempts: QuerySet[ResendAttempt]) -> dict[str, Any]:
    """``{address: when its latest attempt was made}``."""
    return dict(
        attempts.values("email").annotate(last=Max("created_at")).values_list("email", "last")
    )
