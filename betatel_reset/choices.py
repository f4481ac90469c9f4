"""Where a resend came from and how it ended; shared by the service, the audit
trail, signals and the admin."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Source(models.TextChoices):
    WEB = "web", _("Public page")
    ADMIN = "admin", _("Admin")
    COMMAND = "command", _("Command line")
    TASK = "task", _("Background task")
    API = "api", _("Site code")


class Outcome(models.TextChoices):
    SENT = "sent", _("Sent")
    UNKNOWN_ACCOUNT = "unknown_account", _("Unknown account")
    RATE_LIMITED = "rate_limited", _("Rate limited locally")
    CACHE_UNAVAILABLE = "cache_unavailable", _("Refused: cache unavailable")
    UPSTREAM_RATE_LIMITED = "upstream_rate_limited", _("Rate limited by Betatel")
    AUTH_FAILED = "auth_failed", _("Token rejected")
    FAILED = "failed", _("Failed")
    #: The request went out but no complete answer came: the email may have
    #: been sent, so it is not retried with the failures.
    UNCERTAIN = "uncertain", _("May have been sent")
    CIRCUIT_OPEN = "circuit_open", _("Skipped: Betatel paused")
    MISCONFIGURED = "misconfigured", _("Misconfigured")
    INVALID = "invalid", _("Invalid address")
    #: Accepted by a public page with DELIVERY = "queued"; a task replaces it
    #: with the outcome. Still queued minutes later: no worker has sent it.
    QUEUED = "queued", _("Queued, not sent yet")


class BatchState(models.TextChoices):
    """Where a bulk send stands as a whole."""

    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused")
    FINISHED = "finished", _("Finished")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")


class AddressState(models.TextChoices):
    """Where one address of a batch stands.

    ``IN_FLIGHT`` is written before the request leaves and replaced by ``DONE``
    once its outcome is known; an address found in flight after its process
    died becomes ``IN_DOUBT``: Betatel may have sent the email.
    """

    PENDING = "pending", _("Not sent yet")
    IN_FLIGHT = "in_flight", _("Being sent")
    DONE = "done", _("Done")
    IN_DOUBT = "in_doubt", _("In doubt")
