"""The one entry point: :func:`resend_reset_email`.

Views, the admin, the management command and background tasks all call it; none
of them talks HTTP or reads the token themselves.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from . import circuit
from .addresses import clean_address, mask_email
from .backends import UpstreamResponse, get_backend
from .choices import Outcome, Source
from .exceptions import (
    AddressRejected,
    AuthenticationFailed,
    BetatelResetError,
    CircuitOpen,
    ConfigurationError,
    RateLimitExceeded,
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
    source = Source(source) if source else (Source.WEB if request is not None else Source.API)
    address = clean_address(email)
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
    if rate_limit is None:
        rate_limit = source == Source.WEB
    resend_requested.send(sender=source, email=address, source=source, actor=actor)

    started = time.monotonic()
    failure: BetatelResetError | ConfigurationError | None = None
    response: UpstreamResponse | None = None
    try:
        if rate_limit:
            check_rate_limits(address, request)
        circuit.before_call()
        response = _send(address, request)
    except (BetatelResetError, ConfigurationError) as exc:
        # Without its traceback: the frames below hold the token in their
        # variables, and receivers or error trackers may capture them.
        failure = exc.with_traceback(None)
    duration = time.monotonic() - started

    if failure is not None:
        if isinstance(failure, UpstreamUnavailable) and not isinstance(failure, CircuitOpen):
            circuit.record_failure()
        elif isinstance(failure, BetatelResetError) and failure.status_code is not None:
            circuit.record_success()  # Betatel answered: it is up.
        _record(address, source, actor, failure.outcome, failure, duration)
        # An unknown account is an everyday answer, not a fault: logged at the
        # level of a real send, so neither branch does more work than the other.
        everyday = isinstance(failure, RateLimitExceeded | AddressRejected)
        log = logger.info if everyday else logger.warning
        log(
            "Resend to %s from %s: %s (%s) in %.0f ms",
            mask_email(address),
            source,
            failure.outcome,
            failure,
            duration * 1000,
        )
        resend_failed.send(
            sender=source,
            email=address,
            source=source,
            actor=actor,
            outcome=failure.outcome,
            error=failure,
        )
        raise failure

    assert response is not None  # noqa: S101 - narrowed for the type checker
    circuit.record_success()
    result = ResendResult(
        outcome=Outcome.SENT,
        email=address,
        status_code=response.status_code,
        message=response.message,
        duration=duration,
    )
    _record(address, source, actor, Outcome.SENT, result, duration)
    logger.info(
        "Resend to %s from %s: sent (HTTP %s) in %.0f ms",
        mask_email(address),
        source,
        response.status_code,
        duration * 1000,
    )
    resend_sent.send(sender=source, email=address, source=source, actor=actor, result=result)
    return result


def _record(
    address: str,
    source: Source,
    actor: Any,
    outcome: Outcome,
    what: ResendResult | BetatelResetError | ConfigurationError,
    duration: float,
) -> None:
    """Write the audit row; a database failure is logged, never raised, so it
    cannot turn a sent email into an error page."""
    if isinstance(what, ResendResult):
        status, detail = what.status_code, ""
    elif isinstance(what, BetatelResetError):
        status = what.status_code
        detail = str(what)
        if what.upstream_message:
            detail = f"{detail}: {what.upstream_message}"
    else:
        status, detail = None, str(what)
    try:
        ResendAttempt.objects.record(
            email=address,
            source=str(source),
            outcome=str(outcome),
            actor_id=getattr(actor, "pk", None),
            status_code=status,
            duration_ms=round(duration * 1000),
            detail=detail[:255],
        )
    except DatabaseError:
        logger.exception("Could not record the resend attempt for %s", mask_email(address))


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
