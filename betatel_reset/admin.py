"""The admin: resend actions for the site's user admin, and the audit trail.

Two ways to get the actions on the user admin:

* **Automatically** (``BETATEL_RESET['ADMIN_ACTION']``, on by default): the
  actions are added to the ``ModelAdmin`` *instance* the default admin site has
  for ``AUTH_USER_MODEL``, whatever its class, the site's own ``UserAdmin``
  included. The class is never changed, replaced or unregistered. This happens
  when the app is ready if the admin is already registered, else on the first
  request (so the order of ``INSTALLED_APPS`` does not matter).
* **Explicitly**, for a site with its own ``AdminSite`` or admin setup: add
  :class:`ResendResetEmailMixin` to the user ``ModelAdmin``.

Only staff with the ``betatel_reset.send_reset_email`` permission see or can
run the actions. Admin sends skip the public rate limits and show admins the
real outcome (admins are trusted; the enumeration-safe wording is for the
public pages).
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import MethodType, ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.admin.utils import quote, unquote
from django.contrib.auth import get_permission_codename, get_user_model
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.core.signals import request_started
from django.db.models import Max, Model, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .bulk import BulkSummary, TaskFailed, send_many
from .choices import Outcome, Source
from .conf import app_settings
from .exceptions import BetatelResetError, ConfigurationError, InvalidAddress
from .models import ResendAttempt
from .ratelimit import clear_rate_limits, mailbox_key
from .services import clean_address, resend_reset_email

if TYPE_CHECKING:
    from django.contrib.admin import AdminSite, ModelAdmin
    from django_stubs_ext import StrOrPromise

logger = logging.getLogger(__name__)

#: The permission every action here requires.
PERMISSION = "betatel_reset.send_reset_email"
#: The ``has_<name>_permission`` method Django's action permissions call.
PERMISSION_METHOD = "has_send_reset_email_permission"
#: How many addresses the confirmation page lists before "and N more".
SHOWN_ON_CONFIRMATION = 100

NO_ADDRESS = _("no email address")
INACTIVE = _("inactive")
INVALID = _("not a valid email address")
DUPLICATE = _("same address as another selected user")
SENT_SINCE = _("sent successfully since")


def has_send_permission(request: HttpRequest) -> bool:
    return request.user.has_perm(PERMISSION)


# Selections ------------------------------------------------------------------


@dataclass
class Selection:
    """Selected users split into the addresses to send to and the users skipped."""

    #: ``(user, address)`` for each user to send to.
    to_send: list[tuple[str, str]] = field(default_factory=list)
    #: ``(user, reason)`` for each user skipped.
    skipped: list[tuple[str, StrOrPromise]] = field(default_factory=list)

    @property
    def addresses(self) -> list[str]:
        return [address for _user, address in self.to_send]


def plan_users(queryset: QuerySet[Any]) -> Selection:
    """Read the selected users' addresses, skipping inactive users, users
    without a (valid) address and repeated addresses; one query, whatever the
    user model (its address comes from ``get_email_field_name()``)."""
    model = queryset.model
    email_field = model.get_email_field_name()
    has_is_active = _has_field(model, "is_active")
    fields = ["pk", model.USERNAME_FIELD, email_field]
    if has_is_active:
        fields.append("is_active")
    selection = Selection()
    seen: set[str] = set()
    for row in queryset.order_by("pk").values_list(*fields).iterator(chunk_size=2000):
        user, raw = str(row[1]), row[2]
        if has_is_active and not row[3]:
            selection.skipped.append((user, INACTIVE))
            continue
        if not raw:
            selection.skipped.append((user, NO_ADDRESS))
            continue
        try:
            address = clean_address(raw)
        except InvalidAddress:
            selection.skipped.append((user, INVALID))
            continue
        key = mailbox_key(address)
        if key in seen:
            selection.skipped.append((user, DUPLICATE))
            continue
        seen.add(key)
        selection.to_send.append((user, address))
    return selection


def _has_field(model: type[Model], name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


# Sending a selection -----------------------------------------------------------


def _tasks_module() -> ModuleType | None:
    """:mod:`betatel_reset.tasks`, or ``None`` without a Tasks framework."""
    try:
        from . import tasks
    except ImportError:  # Django 5.2 without the django-tasks backport
        return None
    return tasks


def inline_limit_exceeded(count: int) -> bool:
    """Whether ``count`` addresses are too many to send in the request."""
    tasks = _tasks_module()
    inline = tasks is None or tasks.backend_is_immediate()
    return inline and count > app_settings.INLINE_MAX_BATCH


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


class ResendResetEmailMixin(admin.ModelAdmin):  # type: ignore[type-arg]  # not generic at runtime
    """Adds the resend and clear-limits actions to a user ``ModelAdmin``.

    For sites that register their user model on their own ``AdminSite`` (or
    turn ``ADMIN_ACTION`` off and want the actions on one admin only)::

        class MemberAdmin(ResendResetEmailMixin, UserAdmin):
            ...

    The actions show only to users with the ``betatel_reset.send_reset_email``
    permission, and not where the admin has ``actions = None``.
    """

    def __init__(self, model: type[Model], admin_site: AdminSite) -> None:
        super().__init__(model, admin_site)
        _add_user_actions(self)

    def has_send_reset_email_permission(self, request: HttpRequest) -> bool:
        return has_send_permission(request)


def _has_send_reset_email_permission(model_admin: Any, request: HttpRequest) -> bool:
    return has_send_permission(request)


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
            MethodType(_has_send_reset_email_permission, model_admin),
        )


_attach_lock = threading.Lock()


def attach_user_actions(site: AdminSite | None = None) -> ModelAdmin[Any] | None:
    """Add the user actions to the ``ModelAdmin`` ``site`` (default: the
    default admin site) has for the user model.

    Only that instance changes: its ``actions`` gets the two actions appended
    and it gains the permission method they need. Its class, and the
    registration, stay as they are. Idempotent; an admin with
    ``actions = None`` is left alone. Returns the ``ModelAdmin``, or ``None``
    when the user model is not registered there.
    """
    site = site or admin.site
    try:
        model_admin = site.get_model_admin(get_user_model())
    except NotRegistered:
        return None
    with _attach_lock:
        _add_user_actions(model_admin)
    return model_admin


def auto_attach(site: AdminSite | None = None) -> None:
    """Attach the actions now if the user admin is registered, else on the
    first request, once every app's admin module has been imported.

    Called from the app's ``ready()``; does nothing when ``ADMIN_ACTION`` is off.
    """
    if not app_settings.ADMIN_ACTION:
        return
    if attach_user_actions(site) is not None:
        return
    dispatch_uid = f"betatel_reset.admin.auto_attach:{id(site) if site else 'default'}"

    def attach_on_first_request(sender: Any, **kwargs: Any) -> None:
        request_started.disconnect(dispatch_uid=dispatch_uid)
        if app_settings.ADMIN_ACTION and attach_user_actions(site) is None:
            logger.warning(
                "The user model is not registered with the admin site, so the resend "
                "actions were not added to it (see check betatel_reset.W004)."
            )

    request_started.connect(attach_on_first_request, weak=False, dispatch_uid=dispatch_uid)


# The audit trail ---------------------------------------------------------------


@admin.register(ResendAttempt)
class ResendAttemptAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # not generic at runtime
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
    list_filter = ["outcome", "source", "created_at"]
    search_fields = ["email"]
    date_hierarchy = "created_at"
    list_select_related = ["actor"]
    list_per_page = 100
    actions = ["retry_failed_attempts", "clear_rate_limits_for_addresses"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_send_reset_email_permission(self, request: HttpRequest) -> bool:
        return has_send_permission(request)

    @admin.action(
        description=_("Retry selected failed attempts"), permissions=["send_reset_email"]
    )
    def retry_failed_attempts(
        self, request: HttpRequest, queryset: QuerySet[ResendAttempt]
    ) -> None:
        """Resend to the addresses of the selected failed attempts, once each,
        skipping those sent successfully since."""
        latest_failure = dict(
            queryset.exclude(outcome=Outcome.SENT)
            .values("email")
            .annotate(last=Max("created_at"))
            .values_list("email", "last")
        )
        if not latest_failure:
            self.message_user(
                request, gettext("None of the selected attempts failed."), messages.WARNING
            )
            return
        last_sent = dict(
            ResendAttempt.objects.filter(email__in=latest_failure, outcome=Outcome.SENT)
            .values("email")
            .annotate(last=Max("created_at"))
            .values_list("email", "last")
        )
        addresses, seen, skipped = [], set(), 0
        for email, failed_at in sorted(latest_failure.items()):
            sent_at = last_sent.get(email)
            if (sent_at is not None and sent_at > failed_at) or mailbox_key(email) in seen:
                skipped += 1
                continue
            seen.add(mailbox_key(email))
            addresses.append(email)
        if not addresses:
            self.message_user(
                request,
                gettext("Nothing to retry: every address was %(reason)s.")
                % {"reason": SENT_SINCE},
                messages.WARNING,
            )
            return
        if inline_limit_exceeded(len(addresses)):
            self.message_user(
                request,
                gettext(
                    "%(count)d addresses are too many to send to while you wait (the "
                    "limit is %(limit)d). Configure a background task backend or use "
                    "“manage.py betatel_resend”."
                )
                % {"count": len(addresses), "limit": app_settings.INLINE_MAX_BATCH},
                messages.ERROR,
            )
            return
        send_selection(self, request, addresses, skipped)

    @admin.action(
        description=_("Clear resend rate limits for these addresses"),
        permissions=["send_reset_email"],
    )
    def clear_rate_limits_for_addresses(
        self, request: HttpRequest, queryset: QuerySet[ResendAttempt]
    ) -> None:
        emails = queryset.order_by().values_list("email", flat=True).distinct()
        _clear_limits(self, request, sorted(set(emails)))

    def get_urls(self) -> list[URLPattern]:
        send = path(
            "send/<path:object_id>/",
            self.admin_site.admin_view(self.send_to_user_view),
            name="betatel_reset_resendattempt_send",
        )
        return [send, *super().get_urls()]

    def send_to_user_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST only: resend to one user, then go back to their change page.

        Behind the "Send reset email" button a site can add to its user
        change form (``admin/betatel_reset/includes/send_reset_email_button.html``).
        """
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        user_model = get_user_model()
        can_view_users = request.user.has_perm(
            f"{user_model._meta.app_label}.{get_permission_codename('view', user_model._meta)}"
        ) or request.user.has_perm(
            f"{user_model._meta.app_label}.{get_permission_codename('change', user_model._meta)}"
        )
        if not (has_send_permission(request) and can_view_users):
            raise PermissionDenied
        try:
            user = user_model._default_manager.get(pk=unquote(object_id))
        except (user_model.DoesNotExist, ValueError, ValidationError):
            raise Http404(gettext("No such user.")) from None
        selection = plan_users(user_model._default_manager.filter(pk=user.pk))
        if selection.skipped:
            name, reason = selection.skipped[0]
            self.message_user(
                request,
                gettext("No reset-password email sent to %(user)s: %(reason)s.")
                % {"user": name, "reason": reason},
                messages.WARNING,
            )
        else:
            self._send_one(request, selection.addresses[0])
        return HttpResponseRedirect(self._user_change_url(user))

    def _send_one(self, request: HttpRequest, address: str) -> None:
        started = timezone.now()
        try:
            result = resend_reset_email(address, source=Source.ADMIN, actor=request.user)
        except BetatelResetError as exc:
            text = gettext("No reset-password email sent to %(address)s: %(outcome)s (%(error)s).")
            values = {"address": address, "outcome": exc.outcome.label, "error": exc}
            _message(self, request, text % values, messages.ERROR, started)
        except ConfigurationError as exc:
            text = gettext("Not sent: the site is misconfigured. %(error)s") % {"error": exc}
            _message(self, request, text, messages.ERROR, started)
        else:
            text = gettext("Sent a reset-password email to %(address)s.") % {
                "address": result.email
            }
            _message(self, request, text, messages.SUCCESS, started)

    def _user_change_url(self, user: Model) -> str:
        opts = user._meta
        try:
            return reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change",
                args=[quote(user.pk)],
                current_app=self.admin_site.name,
            )
        except NoReverseMatch:
            return reverse(
                "admin:betatel_reset_resendattempt_changelist", current_app=self.admin_site.name
            )
