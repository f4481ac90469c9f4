"""Sending from the admin, and the messages that tell the admin how it went."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

from .. import texts
from ..bulk import TaskFailed
from ..choices import Source
from ..conf import app_settings
from ..dispatch import dispatch, inline_limit_exceeded
from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from django.contrib.admin import AdminSite, ModelAdmin

logger = logging.getLogger(__name__)


def refuse_misconfigured(model_admin: ModelAdmin[Any], request: HttpRequest) -> bool:
    """Tell the admin and return ``True`` when a setting has a value the app
    cannot use; ``manage.py check`` names it, and so does the log."""
    try:
        app_settings.validate()
    except ConfigurationError as exc:
        logger.error("Admin resend stopped: %s", exc)
        model_admin.message_user(request, texts.format("stopped_misconfigured"), messages.ERROR)
        return True
    return False


def refuse_too_many(model_admin: ModelAdmin[Any], request: HttpRequest, count: int) -> bool:
    """Tell the admin and return ``True`` when ``count`` addresses are too
    many to send while they wait."""
    if not inline_limit_exceeded(count):
        return False
    model_admin.message_user(
        request,
        texts.format("too_many_inline", count=count, limit=app_settings.INLINE_MAX_BATCH),
        messages.ERROR,
    )
    return True


def send_and_report(
    model_admin: ModelAdmin[Any], request: HttpRequest, addresses: Sequence[str], skipped: int
) -> None:
    """Send ``addresses`` (queued on a background backend, else in this
    request) and tell the admin how it went, linking to the audit rows."""
    started = timezone.now()
    try:
        done = dispatch(addresses, source=Source.ADMIN, actor=request.user)
    except ConfigurationError:
        logger.exception("Admin resend stopped: the site is misconfigured")
        report(
            model_admin, request, texts.format("stopped_misconfigured"), messages.ERROR, started
        )
        return
    except TaskFailed:
        logger.exception("Admin resend stopped: the send task failed")
        report(model_admin, request, texts.format("stopped_task_failed"), messages.ERROR, started)
        return
    if done.summary is None:
        text = texts.format(
            "queued",
            count=done.count,
            tasks=texts.format("task_count", count=done.tasks),
            skipped=skipped,
        )
        if done.not_queued:
            text += " " + texts.format("not_queued", count=done.not_queued)
        report(
            model_admin,
            request,
            text,
            messages.ERROR if done.not_queued else messages.SUCCESS,
            started,
        )
        return
    level = messages.WARNING if done.summary.failed else messages.SUCCESS
    report(model_admin, request, done.summary.describe(skipped=skipped), level, started)


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


def report(
    model_admin: ModelAdmin[Any],
    request: HttpRequest,
    text: str,
    level: int,
    started: datetime.datetime,
) -> None:
    """``text`` as an admin message, with a link to the audit rows since ``started``."""
    url = audit_trail_url(model_admin.admin_site, since=started, actor=request.user)
    if url is None:
        model_admin.message_user(request, text, level)
        return
    link = format_html('{} <a href="{}">{}</a>', text, url, texts.format("audit_link"))
    model_admin.message_user(request, link, level)
