"""Attaching the user actions to the ModelAdmin another app registered."""

from __future__ import annotations

import logging
import threading
from types import MethodType
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.auth import get_user_model
from django.core.signals import request_started
from django.db.models import Model

from ..conf import app_settings
from .permissions import PERMISSION_METHOD, has_send_reset_email_permission
from .send_button import add_send_button
from .user_actions import USER_ACTIONS

if TYPE_CHECKING:
    from django.contrib.admin import AdminSite, ModelAdmin

logger = logging.getLogger(__name__)


class ResendResetEmailMixin(admin.ModelAdmin):  # type: ignore[type-arg]  # not generic at runtime
    """Adds the resend and clear-limits actions to a user ``ModelAdmin``.

    For sites that register their user model on their own ``AdminSite`` (or
    turn ``ADMIN_ACTION`` off and want the actions on one admin only)::

        class MemberAdmin(ResendResetEmailMixin, UserAdmin):
            ...

    The actions show only to users with the ``betatel_reset.send_reset_email``
    permission, and not where the admin has ``actions = None``. The change page
    gets the "Send reset email" button (see :func:`.send_button.add_send_button`).
    """

    def __init__(self, model: type[Model], admin_site: AdminSite) -> None:
        super().__init__(model, admin_site)
        _add_user_actions(self)
        add_send_button(self)

    has_send_reset_email_permission = has_send_reset_email_permission


def _add_user_actions(model_admin: ModelAdmin[Any]) -> None:
    """Append the user actions to this instance's ``actions`` (a new list: the
    class attribute is never touched) and give it the permission method
    they need, so Django's own machinery lists and guards them."""
    if model_admin.actions is None:  # the site turned actions off here
        return
    present = list(model_admin.actions)
    names = {a if isinstance(a, str) else getattr(a, "__name__", "") for a in present}
    missing = [func for func in USER_ACTIONS if func.__name__ not in names]
    if missing:
        model_admin.actions = [*present, *missing]
    if not hasattr(model_admin, PERMISSION_METHOD):
        setattr(
            model_admin,
            PERMISSION_METHOD,
            MethodType(has_send_reset_email_permission, model_admin),
        )


_attach_lock = threading.Lock()


def attach_user_actions(site: AdminSite | None = None) -> ModelAdmin[Any] | None:
    """Add the user actions to the ``ModelAdmin`` ``site`` (default: the
    default admin site) has for the user model.

    Only that instance changes: its ``actions`` gets the two actions appended,
    it gains the permission method they need, and its change page gets the
    "Send reset email" button. Its class and its registration stay as they
    are. Idempotent; an admin with ``actions = None`` gets no actions.
    Returns the ``ModelAdmin``, or ``None`` when the user model is not
    registered there.
    """
    site = site or admin.site
    try:
        model_admin = site.get_model_admin(get_user_model())
    except NotRegistered:
        return None
    with _attach_lock:
        _add_user_actions(model_admin)
        add_send_button(model_admin)
    return model_admin


def auto_attach(site: AdminSite | None = None) -> None:
    """Attach the actions now if the user admin is registered, else on the
    first request, once every app's admin module has been imported.

    Called from the app's ``ready()``; does nothing when ``ADMIN_ACTION`` is off.
    """
    if not _enabled():
        return
    if attach_user_actions(site) is not None:
        return
    dispatch_uid = f"betatel_reset.admin.auto_attach:{id(site) if site else 'default'}"

    def attach_on_first_request(sender: Any, **kwargs: Any) -> None:
        request_started.disconnect(dispatch_uid=dispatch_uid)
        if _enabled() and attach_user_actions(site) is None:
            logger.warning(
                "The user model is not registered with the admin site, so the resend "
                "actions were not added to it (see check betatel_reset.W004)."
            )

    request_started.connect(attach_on_first_request, weak=False, dispatch_uid=dispatch_uid)


def _enabled() -> bool:
    """``ADMIN_ACTION``; a value the app cannot use attaches nothing rather
    than stop the site from starting (check E007 names it)."""
    return app_settings.usable("ADMIN_ACTION") and app_settings.ADMIN_ACTION
