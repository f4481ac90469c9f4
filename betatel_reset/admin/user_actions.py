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
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ..conf import app_settings
from ..dispatch import _tasks_module, inline_limit_exceeded
from ..ratelimit import clear_rate_limits
from ..selection import Selection, _has_field, plan_users
from .permissions import has_send_permission
from .reporting import send_selection

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

logger = logging.getLogger(__name__)


#: How many addresses the confirmation page lists before "and N more".
SHOWN_ON_CONFIRMATION = 100


# The user admin's actions ------------------------------------------------------


@admin.action(description=_("Resend reset-password email"), permissions=["send_reset_email"])
def resend_reset_email_action(
    modeladmin: ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]
) -> HttpResponse | None:
    """Like "delete selected": a confirmation page first, then, posted again
    with ``post=yes``, the sends."""
    if not has_send_permission(request):
        raise PermissionDenied
    if not _has_field(queryset.model, queryset.model.get_email_field_name()):
        modeladmin.message_user(
            request,
            gettext("%(model)s has no email field to send to.")
            % {"model": queryset.model._meta.verbose_name},
            messages.ERROR,
        )
        return None
    selection = plan_users(queryset)
    if inline_limit_exceeded(len(selection.to_send)):
        modeladmin.message_user(
            request,
            gettext(
                "%(count)d users are too many to send to while you wait (the limit is "
                "%(limit)d). Configure a background task backend such as django-tasks-db, "
                "or use “manage.py betatel_resend”."
            )
            % {"count": len(selection.to_send), "limit": app_settings.INLINE_MAX_BATCH},
            messages.ERROR,
        )
        return None
    if request.POST.get("post") == "yes":
        if not selection.to_send:
            modeladmin.message_user(
                request,
                ngettext(
                    "No reset-password email sent: the selected user was skipped.",
                    "No reset-password email sent: all %(count)d selected users were skipped.",
                    len(selection.skipped),
                )
                % {"count": len(selection.skipped)},
                messages.WARNING,
            )
            return None
        send_selection(modeladmin, request, selection.addresses, len(selection.skipped))
        return None
    return _confirmation_page(modeladmin, request, queryset, selection)


def _confirmation_page(
    modeladmin: ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[Any],
    selection: Selection,
) -> TemplateResponse:
    opts = modeladmin.model._meta
    tasks = _tasks_module()
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
        "queued": tasks is not None and not tasks.backend_is_immediate(),
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
    if not has_send_permission(request):
        raise PermissionDenied
    _clear_limits(modeladmin, request, plan_users(queryset).addresses)


def _clear_limits(
    modeladmin: ModelAdmin[Any], request: HttpRequest, addresses: Iterable[str]
) -> None:
    count = 0
    for address in addresses:
        clear_rate_limits(address)
        count += 1
    modeladmin.message_user(
        request,
        ngettext(
            "Cleared the resend rate limits of %(count)d address.",
            "Cleared the resend rate limits of %(count)d addresses.",
            count,
        )
        % {"count": count},
        messages.SUCCESS,
    )


USER_ACTIONS: tuple[Callable[..., Any], ...] = (
    resend_reset_email_action,
    clear_rate_limits_action,
)
