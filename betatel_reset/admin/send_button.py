"""The "Send reset email" button on a user's change page, and the view behind it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.admin.utils import quote, unquote
from django.contrib.auth import get_permission_codename, get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template import TemplateDoesNotExist
from django.template.loader import select_template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from .. import texts
from ..choices import Source
from ..exceptions import BetatelResetError, ConfigurationError
from ..selection import plan_users
from ..services import resend_reset_email
from .permissions import has_send_reset_email_permission
from .reporting import report

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

logger = logging.getLogger(__name__)

#: The user change form with the button: the admin's own, plus the button.
CHANGE_FORM_WITH_BUTTON = "admin/betatel_reset/user_change_form.html"


def add_send_button(model_admin: ModelAdmin[Any]) -> None:
    """Show the button on this user admin's change page, with no template to write.

    Sets this instance's ``change_form_template`` (its class is not touched),
    unless the site already chose one: its own ``change_form_template``, or an
    ``admin/<app>/<model>/change_form.html`` or ``admin/<app>/change_form.html``
    template, which would otherwise be bypassed. Such a template includes the
    button itself (see the README).
    """
    if model_admin.change_form_template or _has_own_change_form(model_admin):
        return
    # On the instance only (a class attribute in the stubs): the class stays as it is.
    setattr(model_admin, "change_form_template", CHANGE_FORM_WITH_BUTTON)  # noqa: B010


def _has_own_change_form(model_admin: ModelAdmin[Any]) -> bool:
    opts = model_admin.model._meta
    try:
        select_template(
            [
                f"admin/{opts.app_label}/{opts.model_name}/change_form.html",
                f"admin/{opts.app_label}/change_form.html",
            ]
        )
    except TemplateDoesNotExist:
        return False
    return True


def send_to_user_view(
    model_admin: ModelAdmin[Any], request: HttpRequest, object_id: str
) -> HttpResponse:
    """POST only: resend to one user, then go back to their change page.

    Behind the "Send reset email" button a site can add to its user
    change form (``admin/betatel_reset/includes/send_reset_email_button.html``).
    """
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    user_model = get_user_model()
    if not (
        has_send_reset_email_permission(model_admin, request)
        and _can_see_users(request, user_model)
    ):
        raise PermissionDenied
    try:
        user = user_model._default_manager.get(pk=unquote(object_id))
    except (user_model.DoesNotExist, ValueError, ValidationError):
        raise Http404(texts.format("no_such_user")) from None
    selection = plan_users(user_model._default_manager.filter(pk=user.pk))
    if selection.skipped:
        name, reason = selection.skipped[0]
        text = texts.format("user_skipped", user=name, reason=reason)
        model_admin.message_user(request, text, messages.WARNING)
    else:
        _send_one(model_admin, request, selection.addresses[0])
    return HttpResponseRedirect(_change_url(model_admin, user))


def _can_see_users(request: HttpRequest, user_model: type[Model]) -> bool:
    opts = user_model._meta
    return any(
        request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")
        for action in ("view", "change")
    )


def _send_one(model_admin: ModelAdmin[Any], request: HttpRequest, address: str) -> None:
    started = timezone.now()
    try:
        result = resend_reset_email(address, source=Source.ADMIN, actor=request.user)
    except BetatelResetError as exc:
        text = texts.format("one_failed", address=address, outcome=exc.outcome.label)
        report(model_admin, request, text, messages.ERROR, started)
    except ConfigurationError as exc:
        logger.error("Admin resend stopped: %s", exc)
        text = texts.format("one_misconfigured")
        report(model_admin, request, text, messages.ERROR, started)
    else:
        text = texts.format("one_sent", address=result.email)
        report(model_admin, request, text, messages.SUCCESS, started)


def _change_url(model_admin: ModelAdmin[Any], user: Model) -> str:
    opts = user._meta
    try:
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change",
            args=[quote(user.pk)],
            current_app=model_admin.admin_site.name,
        )
    except NoReverseMatch:
        return reverse(
            "admin:betatel_reset_resendattempt_changelist",
            current_app=model_admin.admin_site.name,
        )
