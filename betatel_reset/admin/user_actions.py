"""The resend and clear-limits actions for the site's user admin."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
)
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import texts
from ..conf import app_settings
from ..dispatch import sends_inline
from ..exceptions import ConfigurationError, LimitsUnavailable
from ..ratelimit import clear_rate_limits
from ..selection import Selection, has_field, plan_users
from .permissions import has_send_reset_email_permission
from .reporting import refuse_misconfigured, refuse_too_many, send_and_report

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

logger = logging.getLogger(__name__)


#: How many addresses the confirmation page lists before "and N more".
SHOWN_ON_CONFIRMATION = 100


@admin.action(description=_("Resend reset-password email"), permissions=["send_reset_email"])
def resend_reset_email_action(
    modeladmin: ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]
) -> HttpResponse | None:
    """Like "delete selected": a confirmation page first, then, posted again
    with ``post=yes``, the sends."""
    if not has_send_reset_email_permission(modeladmin, request):
        raise PermissionDenied
    if not has_field(queryset.model, queryset.model.get_email_field_name()):
        text = texts.format("no_email_field", model=queryset.model._meta.verbose_name)
        modeladmin.message_user(request, text, messages.ERROR)
        return None
    if refuse_misconfigured(modeladmin, request):
        return None
    selection = plan_users(queryset)
    if refuse_too_many(modeladmin, request, len(selection.to_send)):
        return None
    if request.POST.get("post") != "yes":
        return _confirmation_page(modeladmin, request, selection)
    if not selection.to_send:
        text = texts.format("all_skipped", count=len(selection.skipped))
        modeladmin.message_user(request, text, messages.WARNING)
        return None
    send_and_report(modeladmin, request, selection.addresses, len(selection.skipped))
    return None


def _confirmation_page(
    modeladmin: ModelAdmin[Any], request: HttpRequest, selection: Selection
) -> TemplateResponse:
    opts = modeladmin.model._meta
    select_across = request.POST.get("select_across") == "1"
    selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": gettext("Resend reset-password emails"),
        "subtitle": None,
        "opts": opts,
        "media": modeladmin.media,
        "action_name": resend_reset_email_action.__name__,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        # "All N matching" sends the filter, not N ids (POSTs cap their fields).
        "select_across": select_across,
        "selected": selected[:1] if select_across else selected,
        "user_count": len(selection.to_send) + len(selection.skipped),
        "send_count": len(selection.to_send),
        "skip_count": len(selection.skipped),
        "to_send": selection.to_send[:SHOWN_ON_CONFIRMATION],
        "more_to_send": max(0, len(selection.to_send) - SHOWN_ON_CONFIRMATION),
        "skipped": selection.skipped[:SHOWN_ON_CONFIRMATION],
        "more_skipped": max(0, len(selection.skipped) - SHOWN_ON_CONFIRMATION),
        "queued": not sends_inline(),
        "concurrency": app_settings.INLINE_CONCURRENCY,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(
        request,
        [
            f"admin/{opts.app_label}/{opts.model_name}/resend_confirmation.html",
            f"admin/{opts.app_label}/resend_confirmation.html",
            "admin/betatel_reset/resend_confirmation.html",
        ],
        context,
    )


@admin.action(description=_("Clear resend rate limits"), permissions=["send_reset_email"])
def clear_rate_limits_action(
    modeladmin: ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]
) -> None:
    """Forget the public rate-limit counts of the selected users' addresses,
    for a real user locked out by them."""
    if not has_send_reset_email_permission(modeladmin, request):
        raise PermissionDenied
    clear_limits(modeladmin, request, plan_users(queryset).addresses)


def clear_limits(
    modeladmin: ModelAdmin[Any], request: HttpRequest, addresses: Iterable[str]
) -> None:
    """Forget the rate-limit counts of ``addresses`` and say how many."""
    count = 0
    try:
        for address in addresses:
            clear_rate_limits(address)
            count += 1
    except LimitsUnavailable:
        modeladmin.message_user(request, texts.format("limits_unavailable"), messages.ERROR)
        return
    except ConfigurationError as exc:
        logger.error("Clearing rate limits stopped: %s", exc)
        modeladmin.message_user(request, texts.format("limits_misconfigured"), messages.ERROR)
        return
    modeladmin.message_user(request, texts.format("limits_cleared", count=count), messages.SUCCESS)


USER_ACTIONS: tuple[Callable[..., Any], ...] = (
    resend_reset_email_action,
    clear_rate_limits_action,
)
