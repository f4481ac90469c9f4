"""Every sentence a user or an admin reads, in one place.

The public pages' titles, flashed messages and form errors, and the messages
the admin actions leave, are all looked up here by key. A site changes any of
them with the ``MESSAGES`` setting, without subclassing a view, a form or an
admin::

    from django.utils.translation import gettext_lazy as _

    BETATEL_RESET = {
        "MESSAGES": {
            "sent": _("Check your inbox: a new link is on its way."),
        },
    }

An override may use the placeholders its default uses (``%(count)d``,
``%(address)s`` …), and no others: check ``betatel_reset.E006`` says so at
startup. Plural texts are ``ngettext_lazy(singular, plural, "count")``, and an
override may be one too. Labels (field names, action names, table headings)
stay with the code that shows them, as in Django's own admin; the pages' longer
wording is in their templates.

No sentence here carries an error's English description: admins find the
details in the audit trail and the server log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from .conf import app_settings

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

DEFAULTS: dict[str, StrOrPromise] = {
    # The public pages.
    "resend_title": _("Didn't get the email?"),
    "expired_title": _("This reset link has expired"),
    "email_label": _("Email address"),
    "email_help": _("The address you use to sign in."),
    # Shown after a send *and* for an unknown account: it claims nothing, and it
    # is true whether the email left already (inline) or will soon (queued).
    # The address is what the user typed, so that a typo shows at once.
    "sent": _(
        "If an account exists for %(address)s, a new reset link will arrive there "
        "within a few minutes; check your spam folder too. Not your address? "
        "Enter the right one below."
    ),
    "unavailable": _("We couldn't send the email right now. Please try again in a few minutes."),
    "rate_limited": _("Too many requests. Please try again in %(wait)s."),
    "wait_seconds": ngettext_lazy("%(count)d second", "%(count)d seconds", "count"),
    "wait_minutes": ngettext_lazy("%(count)d minute", "%(count)d minutes", "count"),
    "required": _("Enter your email address."),
    "invalid": _("Enter a valid email address, like name@example.com."),
    "max_length": _("An email address has at most %(limit_value)d characters."),
    "unknown_account": _("We couldn't find an account with that address."),
    # Why a selected user gets no email (the admin's confirmation page).
    "skip_no_address": _("no email address"),
    "skip_inactive": _("inactive"),
    "skip_invalid": _("not a valid email address"),
    "skip_duplicate": _("same address as another selected user"),
    # A selected user whose username is empty, named by id instead.
    "unnamed_user": _("user #%(id)s"),
    # The admin actions.
    "no_email_field": _("%(model)s has no email field to send to."),
    "too_many_inline": _(
        "%(count)d addresses are too many to send to while you wait (the limit is "
        "%(limit)d). Configure a background task backend such as django-tasks-db, "
        "or use “manage.py betatel_resend”."
    ),
    "all_skipped": ngettext_lazy(
        "No reset-password email sent: the selected user was skipped.",
        "No reset-password email sent: all %(count)d selected users were skipped.",
        "count",
    ),
    "queued": ngettext_lazy(
        "Queued %(count)d reset-password email for a background worker "
        "(%(tasks)s, %(skipped)d skipped).",
        "Queued %(count)d reset-password emails for background workers "
        "(%(tasks)s, %(skipped)d skipped).",
        "count",
    ),
    "not_queued": ngettext_lazy(
        "%(count)d address could not be queued: the task queue refused it. "
        "See the server log, then select it again.",
        "%(count)d addresses could not be queued: the task queue refused them. "
        "See the server log, then select them again.",
        "count",
    ),
    "task_count": ngettext_lazy("%(count)d task", "%(count)d tasks", "count"),
    "summary": _("%(sent)d sent, %(failed)d failed, %(skipped)d skipped."),
    "summary_failures": _("%(sent)d sent, %(failed)d failed (%(failures)s), %(skipped)d skipped."),
    "outcome_count": _("%(outcome)s: %(count)d"),
    "batch_summary": _(
        "%(sent)d sent, %(failed)d failed, %(in_doubt)d in doubt, %(remaining)d remaining."
    ),
    "batch_summary_failures": _(
        "%(sent)d sent, %(failed)d failed (%(failures)s), %(in_doubt)d in doubt, "
        "%(remaining)d remaining."
    ),
    # The bulk sends' admin.
    "batches_paused": ngettext_lazy(
        "Paused %(count)d bulk send; its workers stop within a second.",
        "Paused %(count)d bulk sends; their workers stop within a second.",
        "count",
    ),
    "batches_cancelled": ngettext_lazy(
        "Cancelled %(count)d bulk send; what it had not sent will not be sent.",
        "Cancelled %(count)d bulk sends; what they had not sent will not be sent.",
        "count",
    ),
    "batch_not_resumable": _(
        "Bulk send #%(batch)d cannot be resumed now: it has ended, is still being sent, "
        "or Betatel asked to wait longer."
    ),
    "batch_resumed": _("Bulk send #%(batch)d resumed: %(summary)s"),
    "stopped_misconfigured": _(
        "Sending stopped: the site is misconfigured. Run “manage.py check” and see the server log."
    ),
    "stopped_task_failed": _("Sending stopped: the send task failed. See the server log."),
    "audit_link": _("Show in the audit trail"),
    "limits_cleared": ngettext_lazy(
        "Cleared the resend rate limits of %(count)d address.",
        "Cleared the resend rate limits of %(count)d addresses.",
        "count",
    ),
    "limits_unavailable": _(
        "The cache that counts rate limits is unavailable, so nothing was cleared. "
        "Try again once it is back."
    ),
    "limits_misconfigured": _(
        "Nothing was cleared: the site is misconfigured. Run “manage.py check” and see "
        "the server log."
    ),
    "none_failed": _("None of the selected attempts failed."),
    "nothing_to_retry": _("Nothing to retry: every address was sent since, or may have been."),
    "uncertain_not_retried": ngettext_lazy(
        "%(count)d selected attempt may have been sent, so it was not retried. To send it "
        "again anyway, use “Retry attempts that may have been sent”.",
        "%(count)d selected attempts may have been sent, so they were not retried. To send "
        "them again anyway, use “Retry attempts that may have been sent”.",
        "count",
    ),
    "stale_queued": ngettext_lazy(
        "%(count)d queued resend is still not sent after %(minutes)d minutes: is a task "
        "worker running (for django-tasks-db, “manage.py db_worker”)? Filter by “queued "
        "delivery” to see it.",
        "%(count)d queued resends are still not sent after %(minutes)d minutes: is a task "
        "worker running (for django-tasks-db, “manage.py db_worker”)? Filter by “queued "
        "delivery” to see them.",
        "count",
    ),
    "none_uncertain": _("No selected attempt is marked “May have been sent”."),
    # The change page's "Send reset email" button.
    "no_such_user": _("No such user."),
    "user_skipped": _("No reset-password email sent to %(user)s: %(reason)s."),
    "one_failed": _("No reset-password email sent to %(address)s: %(outcome)s."),
    "one_misconfigured": _(
        "Not sent: the site is misconfigured. Run “manage.py check” and see the server log."
    ),
    "one_sent": _("Sent a reset-password email to %(address)s."),
}


def get(key: str) -> StrOrPromise:
    """The text for ``key``: the site's override, else the default."""
    overrides = app_settings.MESSAGES
    return overrides[key] if key in overrides else DEFAULTS[key]


def format(key: str, **values: Any) -> str:
    """The text for ``key`` in the active language, with ``values`` filled in."""
    text = get(key)
    return str(text % values) if values else str(text)


#: ``get`` resolved when the text is shown, not when it is looked up: for
#: class attributes (a form's ``error_messages``, a view's ``title``).
get_lazy = lazy(get, str)


def placeholders(text: StrOrPromise) -> set[str]:
    """The ``%(name)`` placeholders ``text`` uses, in both forms of a plural.

    Raises ``ValueError`` or ``TypeError`` when ``text`` is not a valid format.
    """
    used: set[str] = set()

    class Recorder(dict[str, Any]):
        def __init__(self, value: int) -> None:
            super().__init__()
            self.value = value

        def __getitem__(self, name: str) -> int:
            used.add(name)
            return self.value

    for value in (1, 2):  # a plural picks its form by "count"
        text % Recorder(value)
    return used
