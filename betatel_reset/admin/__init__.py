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

One module per idea: :mod:`.user_actions` (the actions and their confirmation
page), :mod:`.attach` (adding them to another app's ``ModelAdmin``),
:mod:`.audit` (the audit trail), :mod:`.batches` (bulk sends: progress, pause,
resume, cancel), :mod:`.reporting` (the messages admins read).
"""

from .attach import ResendResetEmailMixin, attach_user_actions, auto_attach
from .audit import ResendAttemptAdmin
from .batches import ResendBatchAdmin
from .user_actions import (
    USER_ACTIONS,
    clear_rate_limits_action,
    resend_reset_email_action,
)

__all__ = [
    "USER_ACTIONS",
    "ResendAttemptAdmin",
    "ResendBatchAdmin",
    "ResendResetEmailMixin",
    "attach_user_actions",
    "auto_attach",
    "clear_rate_limits_action",
    "resend_reset_email_action",
]
