"""Resending to many addresses: the one loop the admin, background tasks and
``manage.py betatel_resend`` share.

:func:`send_many` calls :func:`~betatel_reset.services.resend_reset_email` for
each address, a bounded number at a time (threads sharing the HTTP backend's
pooled session), so every send is validated, audited and announced exactly as a
single one is. It reads its input lazily: a huge file or stdin is never held in
memory.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import connections, router

from . import texts
from .addresses import mask_email
from .choices import Outcome, Source
from .exceptions import BetatelResetError, CircuitOpen, UpstreamRateLimited
from .models import ResendAttempt
from .services import resend_reset_email

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Called after each address with the address and how it ended.
ResultCallback = Callable[[str, Outcome], None]

#: Waited before retrying when Betatel sends a 429 without ``Retry-After``.
DEFAULT_RETRY_WAIT = 1.0


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``[1, 2, 3, 4, 5]`` in twos → ``[1, 2]``, ``[3, 4]``, ``[5]``."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class TaskFailed(Exception):
    """A send task that ran in this process failed; the task result says why."""


@dataclass
class BulkSummary:
    """How a batch went; ``outcomes`` counts every :class:`Outcome`, sent included."""

    outcomes: Counter[str] = field(default_factory=Counter)
    failed_addresses: list[str] = field(default_factory=list)
    #: The batch these sends were recorded in (:mod:`betatel_reset.batches`).
    batch_id: int | None = None

    @property
    def sent(self) -> int:
        return self.outcomes[Outcome.SENT]

    @property
    def failed(self) -> int:
        return sum(self.outcomes.values()) - self.sent

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    def add(self, address: str, outcome: Outcome) -> None:
        self.outcomes[outcome] += 1
        if outcome != Outcome.SENT:
            self.failed_addresses.append(address)

    def failures_by_outcome(self) -> list[tuple[Outcome, int]]:
        """``[(Outcome.UNKNOWN_ACCOUNT, 2), …]``, most frequent first."""
        return [
            (Outcome(outcome), count)
            for outcome, count in self.outcomes.most_common()
            if outcome != Outcome.SENT
        ]

    def describe(self, *, skipped: int = 0) -> str:
        """``"12 sent, 1 failed (Unknown account: 1), 2 skipped."``"""
        values = {"sent": self.sent, "failed": self.failed, "skipped": skipped}
        if not self.failed:
            return texts.format("summary", **values)
        failures = ", ".join(
            texts.format("outcome_count", outcome=outcome.label, count=count)
            for outcome, count in self.failures_by_outcome()
        )
        return texts.format("summary_failures", failures=failures, **values)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable, for a task's return value."""
        return {
            "total": self.total,
            "sent": self.sent,
            "failed": self.failed,
            "outcomes": dict(self.outcomes),
            "failed_addresses": list(self.failed_addresses),
            "batch_id": self.batch_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BulkSummary:
        return cls(
            outcomes=Counter(data.get("outcomes", {})),
            failed_addresses=list(data.get("failed_addresses", [])),
            batch_id=data.get("batch_id"),
        )


class _Pacer:
    """Shared by a batch's threads: after Betatel asks one of them to slow
    down, none sends again before the requested time."""

    def __init__(self) -> None:
        self._resume_at = 0.0
        self._lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    def wait(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with self._lock:
                delay = self._resume_at - time.monotonic()
            if delay <= 0:
                return
            stop.wait(delay)


def send_many(
    addresses: Iterable[str],
    *,
    source: Source,
    actor: Any = None,
    concurrency: int = 1,
    retries: int = 0,
    max_retry_wait: float = 0.0,
    on_result: ResultCallback | None = None,
) -> BulkSummary:
    """Resend to every address, at most ``concurrency`` at a time.

    When Betatel answers 429 (or the circuit breaker has paused calls) an
    address is retried up to ``retries`` times, after the ``Retry-After`` it
    gave, unless that is longer than ``max_retry_wait`` seconds; meanwhile the
    batch's other threads wait too. Every attempt, retries included, is in the
    audit trail.

    A :class:`~betatel_reset.exceptions.ConfigurationError` stops the batch and
    is raised once the sends already under way have finished: every other send
    would fail the same way.
    """
    summary = BulkSummary()
    pacer = _Pacer()
    stop = threading.Event()
    summary_lock = threading.Lock()

    def send(address: str) -> None:
        outcome = _send_one(address, source, actor, pacer, stop, retries, max_retry_wait)
        with summary_lock:
            summary.add(address, outcome)
            if on_result is not None:
                on_result(address, outcome)

    run_bounded(addresses, send, concurrency=_usable_concurrency(concurrency), stop=stop)
    return summary


def _send_one(
    address: str,
    source: Source,
    actor: Any,
    pacer: _Pacer,
    stop: threading.Event,
    retries: int,
    max_retry_wait: float,
) -> Outcome:
    attempt = 0
    while True:
        pacer.wait(stop)
        try:
            resend_reset_email(address, source=source, actor=actor)
        except (UpstreamRateLimited, CircuitOpen) as exc:
            wait = exc.retry_after if exc.retry_after is not None else DEFAULT_RETRY_WAIT
            if attempt >= retries or wait > max_retry_wait or stop.is_set():
                return exc.outcome
            attempt += 1
            logger.info(
                "Resend to %s: %s; retry %d of %d in %.1f s",
                mask_email(address),
                exc.outcome,
                attempt,
                retries,
                wait,
            )
            pacer.pause(wait)
        except BetatelResetError as exc:
            return exc.outcome
        else:
            return Outcome.SENT


def _usable_concurrency(requested: int) -> int:
    """Threads cannot share an in-memory SQLite database (each would get its
    own, or lock the shared one), so there every send runs in this thread."""
    from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteDatabaseWrapper

    connection = connections[router.db_for_write(ResendAttempt)]
    if isinstance(connection, SQLiteDatabaseWrapper) and connection.is_in_memory_db():
        return 1
    return max(1, requested)


def run_bounded(
    items: Iterable[T],
    work: Callable[[T], None],
    *,
    concurrency: int,
    stop: threading.Event | None = None,
    finish_thread: Callable[[], None] | None = None,
) -> None:
    """Call ``work(item)`` for every item, at most ``concurrency`` at a time.

    Items are drawn from the iterable only as threads become free. The first
    exception stops the others taking new items and is raised here once they
    finish; so does an interrupt (Ctrl-C) in the calling thread. With a
    concurrency of 1 everything runs in the calling thread. ``finish_thread``
    is called in each thread that ran ``work`` once it takes no more items,
    after an error too. Each extra thread closes its database connections
    before it ends.
    """
    stop = stop or threading.Event()
    finish_thread = finish_thread or _nothing
    if concurrency <= 1:
        try:
            for item in items:
                if stop.is_set():
                    break
                work(item)
        finally:
            finish_thread()
        return

    iterator = iter(items)
    take_lock = threading.Lock()
    errors: list[BaseException] = []

    def take() -> list[T]:
        """The next item, or nothing once the input is exhausted or stopped."""
        with take_lock:
            return [] if stop.is_set() else list(itertools.islice(iterator, 1))

    def worker() -> None:
        try:
            try:
                while item := take():
                    work(item[0])
            finally:
                finish_thread()
        except BaseException as exc:
            errors.append(exc)
            stop.set()
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=worker, name=f"betatel-resend-{n}") for n in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        stop.set()  # Ctrl-C: let the sends under way finish, start no more.
        raise
    if errors:
        raise errors[0]


def _nothing() -> None:
    pass
