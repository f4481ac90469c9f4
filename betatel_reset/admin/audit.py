"""The audit trail's admin, and the user change page's send button."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.contrib.auth import get_permission_codename, get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Max, Model, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..addresses import mailbox_key
from ..choices import Outcome, Source
from ..conf import app_settings
from ..dispatch import inline_limit_exceeded
from ..exceptions import BetatelResetError, ConfigurationError
from ..models import ResendAttempt
from ..selection import SENT_SINCE, plan_users
from ..services import resend_reset_email
from .permissions import has_send_permission
from .reporting import _message, send_selection
from .user_actions import _clear_limits

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


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
