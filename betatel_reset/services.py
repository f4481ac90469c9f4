"""The one entry point: :func:`resend_reset_email`.

Views, the admin, the management command and background tasks all call it; none
of them talks HTTP or reads the token themselves.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError
from django.dispatch import Signal
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from . import circuit
from .addresses import clean_address, mask_email
from .backends import UpstreamResponse, get_backend
from .choices import Outcome, Source
from .conf import app_settings
from .exceptions import (
    AuthenticationFailed,
    BetatelResetError,
    CircuitOpen,
    ConfigurationError,
    UpstreamUnavailable,
)
from .models import ResendAttempt
from .ratelimit import check_rate_limits
from .signals import resend_failed, resend_requested, resend_sent
from .tokens import can_refresh, get_token, jwt_expiry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResendResult:
    """A resend that Betatel (or the configured backend) accepted."""

    outcome: Outcome
    email: str
    #: Betatel's HTTP status; ``None`` for the console and locmem backends.
    status_code: int | None
    #: Betatel's own message, cleaned; for logs and admins, never for end users.
    message: str
    #: Seconds spent, retries included.
    duration: float


def resend_reset_email(
    email: str,
    *,
    request: HttpRequest | None = None,
    source: Source | str | None = None,
    actor: Any = None,
    rate_limit: bool | None = None,
) -> ResendResult:
    """Ask Betatel to resend the reset-password email to ``email``.

    Returns a :class:`ResendResult` when the resend was accepted; raises a
    :class:`~betatel_reset.exceptions.BetatelResetError` subclass when it was
    not, or :class:`~betatel_reset.exceptions.ConfigurationError` when the site
    is misconfigured. Every attempt with a valid address is written to the
    audit trail and announced through :mod:`betatel_reset.signals`.

    ``request`` is handed to the token provider and identifies the client for
    rate limiting. ``source`` says where the resend came from (default: ``web``
    with a request, else ``api``). ``actor`` is the user who asked (default: the
    request's authenticated user). The public rate limits apply to ``web``
    resends unless ``rate_limit`` says otherwise.
    """
    attempt = begin(email, request=request, source=source, actor=actor)
    admit(attempt, request, rate_limit)
    return deliver(attempt, request)


def begin(
    email: str, *, request: HttpRequest | None = None, source: Any = None, actor: Any = None
) -> _Attempt:
    """Start an attempt for a valid ``email``: announced, not yet checked or sent."""
    attempt = _Attempt(
        address=clean_address(email),
        source=_source(source, request),
        actor=_actor(actor, request),
    )
    _announce(resend_requested, attempt.source, **attempt.signal_args())
    return attempt


def resume(address: str, *, source: Source, actor: Any, row_id: int | None) -> _Attempt:
    """An attempt a page queued earlier (begun and admitted there), to deliver now."""
    return _Attempt(address=address, source=source, actor=actor, row_id=row_id)


def admit(attempt: _Attempt, request: HttpRequest | None, rate_limit: bool | None = None) -> None:
    """Raise (after recording the failure) unless the attempt may go to Betatel:
    the settings are usable, the rate limits allow it and the circuit is closed."""
    failure: BetatelResetError | ConfigurationError | None = None
    try:
        # A value a system check reports stops here, before anything is counted or sent.
        app_settings.validate()
        if _applies_rate_limits(attempt.source, rate_limit):
            check_rate_limits(attempt.address, request)
        circuit.before_call()
    except (BetatelResetError, ConfigurationError) as exc:
        failure = exc.with_traceback(None)
    if failure is not None:
        attempt.failed(failure)
        raise failure


def deliver(attempt: _Attempt, request: HttpRequest | None = None) -> ResendResult:
    """Send an admitted attempt to Betatel; record, log and announce how it ended."""
    failure: BetatelResetError | ConfigurationError | None = None
    try:
        response = _send(attempt.address, request)
    except (BetatelResetError, ConfigurationError) as exc:
        # Without its traceback: the frames below hold the token in their
        # variables, and receivers or error trackers may capture them.
        failure = exc.with_traceback(None)
    if failure is not None:  # outside the handler: nothing is chained to it
        _tell_circuit(failure)
        attempt.failed(failure)
        raise failure
    circuit.record_success()
    return attempt.sent(response)


def _source(source: Source | str | None, request: HttpRequest | None) -> Source:
    if source:
        return Source(source)
    return Source.WEB if request is not None else Source.API


def _actor(actor: Any, request: HttpRequest | None) -> Any:
    """The user who asked: ``actor``, else the request's signed-in user."""
    if actor is not None or request is None:
        return actor
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def _applies_rate_limits(source: Source, rate_limit: bool | None) -> bool:
    """The public limits guard the public pages; admins and code skip them."""
    return source == Source.WEB if rate_limit is None else rate_limit


def _tell_circuit(error: BetatelResetError | ConfigurationError) -> None:
    """Betatel down counts against the circuit; any answer from it shows it is up."""
    if isinstance(error, UpstreamUnavailable) and not isinstance(error, CircuitOpen):
        circuit.record_failure()
    elif isinstance(error, BetatelResetError) and error.status_code is not None:
        circuit.record_success()


#: Outcomes the site itself must fix, logged at WARNING on every attempt.
#: Everything else is logged at INFO: sends and unknown accounts alike (so
#: an unknown account costs no more work than a real one), our own limits, and
#: outages, which the circuit breaker and the cache announce once, at WARNING,
#: when they begin and end rather than on every request.
NEEDS_FIXING = frozenset({Outcome.AUTH_FAILED, Outcome.MISCONFIGURED})


def _detail(error: BetatelResetError | ConfigurationError) -> str:
    """What the audit trail keeps of a failure: our description, then Betatel's."""
    upstream = getattr(error, "upstream_message", "")
    return f"{error}: {upstream}" if upstream else str(error)


@dataclass(frozen=True)
class _Attempt:
    """One resend under way; it ends :meth:`sent` or :meth:`failed`, and
    either way is audited, logged and announced once."""

    address: str
    source: Source
    actor: Any
    started: float = field(default_factory=time.monotonic)
    #: The audit row written when the attempt was queued: its outcome is
    #: filled in rather than a second row written.
    row_id: int | None = None

    def sent(self, response: UpstreamResponse) -> ResendResult:
        result = ResendResult(
            outcome=Outcome.SENT,
            email=self.address,
            status_code=response.status_code,
            message=response.message,
            duration=time.monotonic() - self.started,
        )
        # The audit row and the log say the duration the caller is told.
        self._finish(
            Outcome.SENT, response.status_code, "", f"HTTP {response.status_code}", result.duration
        )
        _announce(resend_sent, self.source, result=result, **self.signal_args())
        return result

    def failed(self, error: BetatelResetError | ConfigurationError) -> None:
        status = getattr(error, "status_code", None)
        duration = time.monotonic() - self.started
        self._finish(error.outcome, status, _detail(error), str(error), duration)
        _announce(
            resend_failed, self.source, outcome=error.outcome, error=error, **self.signal_args()
        )

    def signal_args(self) -> dict[str, Any]:
        return {"email": self.address, "source": self.source, "actor": self.actor}

    def _finish(
        self, outcome: Outcome, status: int | None, detail: str, why: str, duration: float
    ) -> None:
        _record(self, outcome, status, detail, duration)
        logger.log(
            logging.WARNING if outcome in NEEDS_FIXING else logging.INFO,
            "Resend to %s from %s: %s (%s) in %.0f ms",
            mask_email(self.address),
            self.source,
            outcome,
            why,
            duration * 1000,
        )


def _announce(signal: Signal, sender: Source, **kwargs: Any) -> None:
    """Send ``signal`` to every receiver, whatever one of them raises.

    A receiver cannot change what happened: a sent email stays sent (and is
    not sent twice because the page failed after it). Django's
    ``send_robust`` logs what a receiver raised on the ``django.dispatch``
    logger, at ERROR with its traceback.
    """
    signal.send_robust(sender=sender, **kwargs)


def _record(
    attempt: _Attempt, outcome: Outcome, status: int | None, detail: str, duration: float
) -> None:
    """Write the audit row (or fill in the queued one); a database failure is
    logged, never raised, so it cannot turn a sent email into an error page."""
    values: dict[str, Any] = {
        "outcome": str(outcome),
        "status_code": status,
        "duration_ms": round(duration * 1000),
        "detail": detail[:255],
    }
    try:
        if attempt.row_id is not None and _fill_in_queued(attempt.row_id, values):
            return
        ResendAttempt.objects.record(
            email=attempt.address,
            source=str(attempt.source),
            actor_id=getattr(attempt.actor, "pk", None),
            **values,
        )
    except DatabaseError:
        logger.exception("Could not record the resend attempt for %s", mask_email(attempt.address))


def _fill_in_queued(row_id: int, values: dict[str, Any]) -> bool:
    """Give the queued row its outcome; False when it is gone (pruned, or its
    transaction never committed), and a new row is written instead."""
    return bool(ResendAttempt.objects.filter(pk=row_id, outcome=Outcome.QUEUED).update(**values))


@sensitive_variables("token", "fresh")
def _send(address: str, request: HttpRequest | None) -> UpstreamResponse:
    backend = get_backend()
    token = get_token(request)
    if token is None and backend.requires_token:
        raise ConfigurationError(
            "No Betatel API token: set BETATEL_RESET['TOKEN'] or "
            "BETATEL_RESET['TOKEN_PROVIDER'] (or use the 'console' backend in development)."
        )
    rejected: AuthenticationFailed | None = None
    try:
        return backend.send(address, token=token)
    except AuthenticationFailed as exc:
        rejected = exc
    # Outside the handler on purpose: nothing chains to the error we raise.
    fresh = get_token(request, refresh=True) if can_refresh() else None
    if fresh and fresh != token:
        logger.info("Betatel rejected the token; retrying once with a fresh one")
        return backend.send(address, token=fresh)
    raise _explain_rejection(rejected, token)


def _explain_rejection(error: AuthenticationFailed, token: str | None) -> AuthenticationFailed:
    expires = jwt_expiry(token) if token else None
    if expires is not None and expires.timestamp() <= time.time():
        error.description = (
            f"Betatel rejected the API token: it expired at {expires:%Y-%m-%d %H:%M:%S} UTC"
        )
    return error


#: An attempt under way, for :mod:`betatel_reset.delivery`.
Attempt = _Attempt
