"""How the public pages deliver a resend: ``DELIVERY = "inline"`` or ``"queued"``.

Inline (the default) calls :func:`~betatel_reset.services.resend_reset_email`
in the request and answers once Betatel has. A real Betatel sends the email
before it answers 200 and answers an unknown address with a quick 404, so the
answer's timing says which accounts exist; ``RESPONSE_FLOOR`` pads it.

Queued checks in the request what the page must answer at once (a valid
address, the rate limits, an open circuit's 503), writes the attempt to the
audit trail as ``queued`` and puts a :func:`deliver_resend` task on
``TASK_BACKEND``; a worker sends it, fills in that same audit row with the
outcome and sends the signals. The page answers in the same time for every
account, and a slow Betatel holds a worker process, not a web worker.

The task's arguments are the address (the user's own input, needed to send),
the audit row's id, the source and the signed-in user's id: nothing secret. The
token is fetched by the worker. While queued, the address sits in the task
backend's storage (django-tasks-db: its task table, until
``prune_db_task_results`` removes the finished task) and in the audit row
(until ``betatel_prune``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import DatabaseError, connections, router, transaction
from django.http import HttpRequest

from . import services
from .addresses import mask_email
from .choices import Outcome, Source
from .conf import app_settings
from .exceptions import (
    BetatelResetError,
    CircuitOpen,
    ConfigurationError,
    NotQueued,
    OutcomeUnknown,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from .models import ResendAttempt
from .services import Attempt

if TYPE_CHECKING:
    from django.tasks import task, task_backends
    from django.tasks.backends.immediate import ImmediateBackend
else:
    try:  # Django 6.x
        from django.tasks import task, task_backends
        from django.tasks.backends.immediate import ImmediateBackend
    except ImportError:
        try:  # Django 5.2 with the django-tasks backport
            from django_tasks import task, task_backends
            from django_tasks.backends.immediate import ImmediateBackend
        except ImportError:  # neither: only inline delivery works (check W006)
            task_backends = ImmediateBackend = None

            def task(**options: Any) -> Any:
                return lambda function: function


logger = logging.getLogger(__name__)

#: The longest pause between two attempts to reach a Betatel that refused the connection.
MAX_RECONNECT_WAIT = 30.0


def resend(email: str, *, request: HttpRequest) -> None:
    """What a public page does with a valid address, as ``DELIVERY`` says.

    Raises what :func:`~betatel_reset.services.resend_reset_email` raises,
    and :class:`~betatel_reset.exceptions.NotQueued` when the queue refuses.
    """
    if app_settings.DELIVERY == "queued":
        queue_reset_email(email, request=request)
    else:
        services.resend_reset_email(email, request=request)


def pad_to_floor(started: float) -> None:
    """Inline only: wait until ``RESPONSE_FLOOR`` seconds have passed since
    ``started`` (``time.monotonic()``). Costs the web worker that wait."""
    floor = app_settings.RESPONSE_FLOOR
    if floor is not None and app_settings.DELIVERY == "inline":
        time.sleep(max(0.0, started + floor - time.monotonic()))


def queue_reset_email(email: str, *, request: HttpRequest | None = None) -> None:
    """Check, record as queued and enqueue a resend; a worker sends it.

    Raises like the service for what it checks now (rate limits, an open
    circuit, a misconfigured site); :class:`NotQueued` if the queue refuses.
    """
    if task_backends is None:
        raise ConfigurationError(
            "BETATEL_RESET['DELIVERY'] = 'queued' needs Django's Tasks framework "
            '(Django 6, or pip install "django-betatel-reset[tasks]" on Django 5.2).'
        )
    attempt = services.begin(email, request=request)
    services.admit(attempt, request)
    try:
        if _queue_in_database():  # the row and the task commit together, once
            alias = router.db_for_write(ResendAttempt)
            ours = not connections[alias].in_atomic_block
            with transaction.atomic(using=alias):
                _enqueue(_record_queued(attempt, own_transaction=ours))  # refused: neither is kept
        else:  # committed before the task exists, so that a quick worker finds it
            attempt = _record_queued(attempt)
            _enqueue(attempt)
    except Exception:  # the broker is down, the backend misconfigured …
        logger.exception("The task queue refused the resend to %s", mask_email(attempt.address))
        refused = NotQueued()
        attempt.failed(refused)
        raise refused from None
    logger.info("Resend to %s from %s: queued", mask_email(attempt.address), attempt.source)


def _queue_in_database() -> bool:
    """Whether ``TASK_BACKEND`` keeps its tasks in the database (django-tasks-db)."""
    backend = task_backends[app_settings.TASK_BACKEND]
    return type(backend).__module__.startswith("django_tasks_db")


def _record_queued(attempt: Attempt, *, own_transaction: bool = False) -> Attempt:
    """The attempt with its audit row, written as queued (none if the write fails:
    the task writes its own row when it has sent).

    ``own_transaction``: the row and its task are written in a transaction
    opened for them alone, which then commits as an audit row does
    (``AUDIT_ASYNC_COMMIT``): on PostgreSQL without waiting for the disk, so a
    crash of the database server in the next fraction of a second can lose
    both, never one without the other.
    """
    try:
        row_id = ResendAttempt.objects.record(
            returning=True,
            own_transaction=own_transaction,
            email=attempt.address,
            source=str(attempt.source),
            outcome=Outcome.QUEUED,
            actor_id=getattr(attempt.actor, "pk", None),
        )
    except DatabaseError:
        logger.exception("Could not record the queued resend for %s", mask_email(attempt.address))
        return attempt
    return dataclasses.replace(attempt, row_id=row_id)


def _enqueue(attempt: Attempt) -> None:
    actor = getattr(attempt.actor, "pk", None)
    _task_on(app_settings.TASK_BACKEND).enqueue(
        attempt.address,
        row_id=attempt.row_id,
        source=str(attempt.source),
        actor_id=actor if actor is None or isinstance(actor, int) else str(actor),
        queued_at=time.time(),
    )


@functools.lru_cache(maxsize=8)
def _task_on(alias: str) -> Any:
    """:func:`deliver_resend` bound to the task backend ``alias``, made once
    per alias: ``using()`` builds and validates a new task each time. The
    backend itself is still looked up at each ``enqueue()``."""
    return deliver_resend.using(backend=alias)


@task()
def deliver_resend(
    address: str,
    row_id: int | None = None,
    source: str = Source.WEB,
    actor_id: int | str | None = None,
    queued_at: float | None = None,
) -> str:
    """Send a queued resend; returns its outcome.

    Retries only what cannot send a second email, until ``QUEUED_RETRY_WINDOW``
    seconds after ``queued_at``: Betatel could not be reached (no connection
    was made), answered 429 or 503 with ``Retry-After``, or the circuit is
    open (nothing was called). Each try is audited and announced, as in a bulk
    send: the queued row gets the first try's outcome, later tries rows of
    their own.
    """
    actor = get_user_model()._default_manager.filter(pk=actor_id).first() if actor_id else None
    attempt = services.resume(address, source=Source(source), actor=actor, row_id=row_id)
    give_up_at = (queued_at or time.time()) + app_settings.QUEUED_RETRY_WINDOW
    for tries in range(1000):
        try:
            services.admit(attempt, None, rate_limit=False)
            return str(services.deliver(attempt).outcome)
        except (BetatelResetError, ConfigurationError) as exc:
            wait = retry_wait(exc, tries)
            if wait is None or time.time() + wait > give_up_at:
                return str(exc.outcome)
        logger.info("Resend to %s: trying again in %.1f s", mask_email(address), wait)
        time.sleep(wait)
        attempt = services.resume(address, source=Source(source), actor=actor, row_id=None)
    return str(Outcome.FAILED)  # pragma: no cover (the window ends long before)


def retry_wait(error: BetatelResetError | ConfigurationError, tries: int) -> float | None:
    """Seconds to wait before trying ``error``'s send again; ``None``: never,
    because Betatel may have sent the email (or retrying cannot help)."""
    if isinstance(error, OutcomeUnknown | ConfigurationError):
        return None
    if isinstance(error, CircuitOpen):
        return max(1.0, float(error.retry_after or 1))
    if isinstance(error, UpstreamRateLimited) or (
        isinstance(error, UpstreamUnavailable) and error.status_code == 503
    ):
        return None if error.retry_after is None else max(1.0, math.ceil(error.retry_after))
    if isinstance(error, UpstreamUnavailable) and error.status_code is None:
        return min(MAX_RECONNECT_WAIT, 2.0**tries)  # no connection was made
    return None


def backend_is_immediate() -> bool:
    """Whether ``TASK_BACKEND`` runs a task at once, in the request (or there
    is no Tasks framework at all)."""
    if task_backends is None:
        return True
    return isinstance(task_backends[app_settings.TASK_BACKEND], ImmediateBackend)
