"""Sending a selection from the admin and telling the admin how it went."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import (
    HttpRequest,
)
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext

from ..bulk import BulkSummary, TaskFailed, send_many
from ..choices import Source
from ..conf import app_settings
from ..dispatch import _tasks_module
from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from django.contrib.admin import AdminSite, ModelAdmin

logger = logging.getLogger(__name__)


# Sending a selection -----------------------------------------------------------


def send_selection(
    model_admin: ModelAdmin[Any], request: HttpRequest, addresses: Sequence[str], skipped: int
) -> None:
    """Send ``addresses`` (queued on a background backend, else in this
    request) and tell the admin how it went, linking to the audit rows."""
    started = timezone.now()
    tasks = _tasks_module()
    if tasks is not None and not tasks.backend_is_immediate():
        chunks = tasks.enqueue_in_chunks(addresses, source=Source.ADMIN, actor=request.user)
        text = gettext("%(queued)s (%(tasks)s, %(skipped)s).") % {
            "queued": ngettext(
                "Queued %(count)d reset-password email for a background worker",
                "Queued %(count)d reset-password emails for background workers",
                len(addresses),
            )
            % {"count": len(addresses)},
            "tasks": ngettext("%(count)d task", "%(count)d tasks", chunks) % {"count": chunks},
            "skipped": _skipped(skipped),
        }
        _message(model_admin, request, text, messages.SUCCESS, started)
        return

    try:
        if tasks is not None:
            summary = tasks.run_now(addresses, source=Source.ADMIN, actor=request.user)
        else:
            summary = send_many(
                addresses,
                source=Source.ADMIN,
                actor=request.user,
                concurrency=app_settings.INLINE_CONCURRENCY,
            )
    except ConfigurationError as exc:
        text = gettext("Sending stopped: the site is misconfigured. %(error)s") % {"error": exc}
        _message(model_admin, request, text, messages.ERROR, started)
        return
    except TaskFailed as exc:
        text = gettext("Sending stopped: %(error)s") % {"error": exc}
        _message(model_admin, request, text, messages.ERROR, started)
        return
    level = messages.WARNING if summary.failed else messages.SUCCESS
    _message(model_admin, request, summary_text(summary, skipped), level, started)


def summary_text(summary: BulkSummary, skipped: int) -> str:
    """``"12 sent, 1 failed (Unknown account: 1), 2 skipped."``"""
    failed = ngettext("%(count)d failed", "%(count)d failed", summary.failed) % {
        "count": summary.failed
    }
    if summary.failed:
        details = ", ".join(
            gettext("%(outcome)s: %(count)d") % {"outcome": outcome.label, "count": count}
            for outcome, count in summary.failures_by_outcome()
        )
        failed = f"{failed} ({details})"
    return gettext("%(sent)s, %(failed)s, %(skipped)s.") % {
        "sent": ngettext("%(count)d sent", "%(count)d sent", summary.sent)
        % {"count": summary.sent},
        "failed": failed,
        "skipped": _skipped(skipped),
    }


def _skipped(count: int) -> str:
    return ngettext("%(count)d skipped", "%(count)d skipped", count) % {"count": count}


def audit_trail_url(
    admin_site: AdminSite, *, since: datetime.datetime, actor: Any = None
) -> str | None:
    """The audit changelist filtered to admin sends by ``actor`` since ``since``."""
    name = "admin:betatel_reset_resendattempt_changelist"
    try:
        url = reverse(name, current_app=admin_site.name)
    except NoReverseMatch:
        try:
            url = reverse(name)
        except NoReverseMatch:
            return None
    query = {
        "source__exact": Source.ADMIN.value,
        "created_at__gte": since.replace(microsecond=0).isoformat(),
    }
    if getattr(actor, "pk", None) is not None:
        query["actor__exact"] = str(actor.pk)
    return f"{url}?{urlencode(query)}"


def _message(
    model_admin: ModelAdmin[Any],
    request: HttpRequest,
    text: str,
    level: int,
    started: datetime.datetime,
) -> None:
    url = audit_trail_url(model_admin.admin_site, since=started, actor=request.user)
    if url is None:
        model_admin.message_user(request, text, level)
        return
    link = format_html('{} <a href="{}">{}</a>', text, url, gettext("Show in the audit trail"))
    model_admin.message_user(request, link, level)
