"""The bulk sends' admin: each batch with its progress, its outcomes linked
to the audit trail, and pause, resume and cancel actions."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from .. import batches, texts
from ..choices import BatchState, Outcome
from ..conf import app_settings
from ..exceptions import ConfigurationError
from ..models import ResendBatch
from ..resuming import NotResumable, take_over
from .permissions import ReadOnlyAdmin, has_send_reset_email_permission


@admin.register(ResendBatch)
class ResendBatchAdmin(ReadOnlyAdmin, admin.ModelAdmin):  # type: ignore[type-arg]  # not generic at runtime
    """Bulk sends, read-only but for their state, newest first."""

    list_display = ["__str__", "created_at", "started_by", "source", "state", "progress_bar"]
    list_filter = ["state", "source", "created_at"]
    list_select_related = ["started_by"]
    readonly_fields = [
        "created_at",
        "started_by",
        "source",
        "state",
        "total",
        "progress_bar",
        "breakdown",
        "heartbeat_at",
        "resume_after",
        "detail",
    ]
    fields = tuple(readonly_fields)
    actions = ["pause_batches", "resume_batches", "cancel_batches"]

    has_send_reset_email_permission = has_send_reset_email_permission

    @admin.display(description=_("progress"))
    def progress_bar(self, batch: ResendBatch) -> SafeString:
        """A ``<progress>`` element labelled with the summary, which is also
        shown next to it: the text alternative is the same sentence."""
        found = batches.progress(batch)
        summary = batches.describe(batch, found)
        return format_html(
            '<span class="betatel-batch-progress"><progress value="{}" max="{}" '
            'aria-label="{}">{}</progress> {}</span>',
            found.done,
            max(batch.total, 1),
            summary,
            summary,
            summary,
        )

    @admin.display(description=_("outcomes"))
    def breakdown(self, batch: ResendBatch) -> SafeString:
        """Each outcome with its count, linking to those attempts in the audit trail."""
        found = batches.progress(batch)
        audit = reverse("admin:betatel_reset_resendattempt_changelist")
        rows = []
        for outcome, count in found.by_outcome.most_common():
            query = {
                "outcome__exact": outcome,
                "source__exact": batch.source,
                "created_at__gte": batch.created_at.isoformat(),
            }
            label = texts.format("outcome_count", outcome=Outcome(outcome).label, count=count)
            rows.append((f"{audit}?{urlencode(query)}", label))
        if not rows:
            return format_html("{}", "-")
        return format_html(
            "<ul>{}</ul>", format_html_join("", '<li><a href="{}">{}</a></li>', rows)
        )

    @admin.action(description=_("Pause selected bulk sends"), permissions=["send_reset_email"])
    def pause_batches(self, request: HttpRequest, queryset: QuerySet[ResendBatch]) -> None:
        changed = sum(batches.set_state(b, BatchState.PAUSED) for b in queryset)
        self.message_user(request, texts.format("batches_paused", count=changed))

    @admin.action(description=_("Cancel selected bulk sends"), permissions=["send_reset_email"])
    def cancel_batches(self, request: HttpRequest, queryset: QuerySet[ResendBatch]) -> None:
        changed = sum(batches.set_state(b, BatchState.CANCELLED) for b in queryset)
        self.message_user(request, texts.format("batches_cancelled", count=changed))

    @admin.action(description=_("Resume selected bulk sends"), permissions=["send_reset_email"])
    def resume_batches(self, request: HttpRequest, queryset: QuerySet[ResendBatch]) -> None:
        """Resume each batch: its in-doubt addresses are not sent again. Sent
        in the request on an immediate task backend, else queued by chunk."""
        for batch in queryset:
            try:
                take_over(batch)
            except NotResumable:
                note = texts.format("batch_not_resumable", batch=batch.pk)
                self.message_user(request, note, messages.WARNING)
                continue
            try:
                resume(batch)
            except ConfigurationError:
                self.message_user(request, texts.format("stopped_misconfigured"), messages.ERROR)
                return
            batch.refresh_from_db()
            summary = batches.describe(batch)
            note = texts.format("batch_resumed", batch=batch.pk, summary=summary)
            self.message_user(request, note, messages.SUCCESS)


def resume(batch: ResendBatch) -> None:
    """Send what is left of ``batch``: queued by chunk on a real task queue,
    else here, ``INLINE_CONCURRENCY`` at a time, not waiting out a 429."""
    from ..dispatch import _tasks_module

    tasks = _tasks_module()
    if tasks is not None and not tasks.backend_is_immediate():
        tasks.enqueue_batch(batch)
        return
    batches.run_batch(
        batch, concurrency=app_settings.INLINE_CONCURRENCY, retries=0, max_retry_wait=0.0
    )
