"""The errors :func:`betatel_reset.services.resend_reset_email` raises.

They are split by what a caller must do differently::

    BetatelResetError                 anything that stopped a resend
    ├── InvalidAddress                the address is not a valid email: fix the input
    ├── RateLimitExceeded             our own limit: wait ``retry_after`` seconds
    ├── LimitsUnavailable             the cache is down, so limits cannot be counted
    ├── AuthenticationFailed          401/403: the API token is wrong or expired
    ├── AddressRejected               other 4xx: Betatel refused the address (unknown account)
    ├── UpstreamRateLimited           429: Betatel asks us to slow down
    ├── NotQueued                     DELIVERY = "queued" and the task queue refused it
    └── UpstreamUnavailable           timeouts, connection errors, 5xx, unexpected answers
        ├── OutcomeUnknown            the request went out, no complete answer came back:
        │                             the email may have been sent, do not resend blindly
        └── CircuitOpen               recent failures: we are not calling Betatel for a while

    ConfigurationError                outside the tree on purpose, so a handler for
    │                                 BetatelResetError never hides a misconfigured site
    └── InvalidSetting                a BETATEL_RESET value of the wrong type or out of
                                      range; ``setting`` names the key

Every error carries the upstream ``status_code`` (``None`` when no answer came)
and a description of the *response*, never of the request: no error holds the
API token, in its message, its ``repr`` or a chained cause.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .choices import Outcome


class ConfigurationError(ImproperlyConfigured):
    """The site's settings do not let the app work; the message names the fix."""

    outcome = Outcome.MISCONFIGURED


class InvalidSetting(ConfigurationError):
    """A setting's value the app cannot use; the system checks report the same
    error at startup (``betatel_reset.E007`` and the setting's own ids)."""

    def __init__(self, setting: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.setting = setting
        self.hint = hint


class BetatelResetError(Exception):
    """Base class for every reason a resend did not happen."""

    outcome: Outcome = Outcome.FAILED
    default_description = "The reset email could not be resent."

    def __init__(
        self,
        description: str | None = None,
        *,
        status_code: int | None = None,
        upstream_message: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.description = description or self.default_description
        self.status_code = status_code
        self.upstream_message = upstream_message
        self.retry_after = retry_after
        super().__init__(self.description)

    def __str__(self) -> str:
        if self.status_code is None:
            return self.description
        return f"{self.description} (HTTP {self.status_code})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.description!r}, status_code={self.status_code!r}, "
            f"retry_after={self.retry_after!r})"
        )


class InvalidAddress(BetatelResetError):
    outcome = Outcome.INVALID
    default_description = "The address is not a valid email address."


class RateLimitExceeded(BetatelResetError):
    outcome = Outcome.RATE_LIMITED
    default_description = "Too many resend requests; try again later."

    def __init__(self, description: str | None = None, *, scope: str, retry_after: float) -> None:
        super().__init__(description, retry_after=retry_after)
        self.scope = scope


class LimitsUnavailable(BetatelResetError):
    """The cache that counts the public rate limits cannot be reached; with
    ``CACHE_FAILURE = "closed"`` (the default) nothing is sent."""

    outcome = Outcome.CACHE_UNAVAILABLE
    default_description = "The cache that counts rate limits is unavailable."


class AuthenticationFailed(BetatelResetError):
    outcome = Outcome.AUTH_FAILED
    default_description = "Betatel rejected the API token."


class AddressRejected(BetatelResetError):
    outcome = Outcome.UNKNOWN_ACCOUNT
    default_description = "Betatel refused the address."


class UpstreamRateLimited(BetatelResetError):
    outcome = Outcome.UPSTREAM_RATE_LIMITED
    default_description = "Betatel is rate limiting requests."


class NotQueued(BetatelResetError):
    """The task queue refused a queued delivery (its broker is down): nothing
    was sent, and nothing will be."""

    outcome = Outcome.FAILED
    default_description = "The task queue refused the resend."


class UpstreamUnavailable(BetatelResetError):
    outcome = Outcome.FAILED
    default_description = "Betatel is unavailable."


class OutcomeUnknown(UpstreamUnavailable):
    """Betatel may have received the request, but its answer did not arrive
    (in time, or complete): the email may have been sent. An outage all the
    same, for the circuit breaker and the public pages; resending it risks a
    second email."""

    outcome = Outcome.UNCERTAIN
    default_description = "Betatel did not answer completely; the email may have been sent."


class CircuitOpen(UpstreamUnavailable):
    outcome = Outcome.CIRCUIT_OPEN
    default_description = "Betatel failed repeatedly; calls are paused for a while."
