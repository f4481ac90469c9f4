"""Bulk sends that remember: a :class:`~betatel_reset.models.ResendBatch` and
one :class:`~betatel_reset.models.BatchAddress` per address.

Every address goes ``pending`` → ``in_flight`` → ``done``. The ``in_flight``
mark is a conditional ``UPDATE`` written *before* the request leaves (marking
the same thread's previous address done), and only the process whose
``UPDATE`` changed the row sends: so two workers, threads or
resumes never send one address twice, and a process killed mid-send leaves an
explicit "may have been sent" (``in_flight``, then ``in_doubt`` once someone
resumes the batch) instead of a silent gap. Every send still goes through
:func:`~betatel_reset.services.resend_reset_email`, which writes its audit row.

Betatel's 429 pauses the whole batch: this process's threads and the other
processes of the batch through :mod:`betatel_reset.pacing`, and the batch row.
A wait longer than ``BULK_MAX_RETRY_WAIT`` is not waited out: the batch is
marked paused with the time it may resume, and the address Betatel refused
goes back to pending. Resuming is :mod:`betatel_reset.resuming`.
"""

from __future__ import annotations

import datetime
import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db import connections, router
from django.db.backends.utils import CursorWrapper
from django.db.models import Count
from django.utils import timezone

from . import texts
from .bulk import DEFAULT_RETRY_WAIT, BulkSummary, _usable_concurrency, chunked, run_bounded
from .choices import AddressState, BatchState, Outcome, Source
from .conf import app_settings
from .exceptions import BetatelResetError, CircuitOpen, ConfigurationError, UpstreamRateLimited
from .models import BatchAddress, ResendBatch, _insert_statement
from .pacing import CONTROL_EVERY, BatchPacer, SharedRate
from .services import resend_reset_email

logger = logging.getLogger(__name__)
#: Addresses written or read per query.
PAGE = 500

ENDED = (BatchState.FINISHED, BatchState.CANCELLED, BatchState.FAILED)

ResultCallback = Callable[[str, Outcome], None]


def create_batch(
    addresses: Iterable[str],
    *,
    source: Source,
    actor: Any = None,
    chunk_size: int = 0,
    state: BatchState = BatchState.RUNNING,
) -> ResendBatch:
    """Record a batch of ``addresses`` (already cleaned and de-duplicated),
    written ``PAGE`` at a time so a huge input is never held in memory.
    ``chunk_size`` numbers the addresses' chunks (0: one chunk).

    The addresses go in with one hand-built ``INSERT`` run for each page's
    rows, as the audit row does (``ResendAttempt.objects.record``), rather
    than ``bulk_create()``: no model instance per address, no primary keys
    read back; about half the cost per address (benchmark 8).
    """
    now = timezone.now()
    batch = ResendBatch.objects.create(
        source=source, started_by=actor, state=state, heartbeat_at=now
    )
    alias = router.db_for_write(BatchAddress)
    connection = connections[alias]
    fields, _, insert = _insert_statement(BatchAddress, alias, connection.vendor)
    shared = {f.attname: f.get_db_prep_save(f.get_default(), connection) for f in fields}
    shared.update(batch_id=batch.pk, updated_at=connection.ops.adapt_datetimefield_value(now))
    total = 0
    for page in chunked(addresses, PAGE):
        rows = []
        for address in page:
            values = {
                **shared,
                "email": address,
                "chunk": total // chunk_size if chunk_size else 0,
            }
            rows.append([values[f.attname] for f in fields])
            total += 1
        with connection.cursor() as cursor:
            cursor.executemany(insert, rows)
    batch.total = total
    batch.save(update_fields=["total"])
    return batch


@dataclass
class Progress:
    """Where a batch stands, counted from its addresses."""

    total: int = 0
    by_state: Counter[str] = field(default_factory=Counter)
    by_outcome: Counter[str] = field(default_factory=Counter)

    @property
    def sent(self) -> int:
        return self.by_outcome[Outcome.SENT]

    @property
    def failed(self) -> int:
        return self.by_state[AddressState.DONE] - self.sent

    @property
    def in_doubt(self) -> int:
        return self.by_state[AddressState.IN_DOUBT] + self.by_state[AddressState.IN_FLIGHT]

    @property
    def remaining(self) -> int:
        return self.by_state[AddressState.PENDING]

    @property
    def done(self) -> int:
        return self.total - self.remaining


def progress(batch: ResendBatch) -> Progress:
    rows = BatchAddress.objects.filter(batch=batch).order_by().values("state", "outcome")
    result = Progress(total=batch.total)
    for state, outcome, count in rows.annotate(n=Count("id")).values_list("state", "outcome", "n"):
        result.by_state[state] += count
        if outcome:
            result.by_outcome[outcome] += count
    return result


def describe(batch: ResendBatch, found: Progress | None = None) -> str:
    """``"12 sent, 1 failed (Unknown account: 1), 2 in doubt, 5 remaining."``,
    for the admin and the command alike."""
    found = found or progress(batch)
    values = {
        "sent": found.sent,
        "failed": found.failed,
        "in_doubt": found.in_doubt,
        "remaining": found.remaining,
    }
    failures = [(o, n) for o, n in found.by_outcome.most_common() if o != Outcome.SENT]
    if not failures:
        return texts.format("batch_summary", **values)
    details = ", ".join(
        texts.format("outcome_count", outcome=Outcome(o).label, count=n) for o, n in failures
    )
    return texts.format("batch_summary_failures", failures=details, **values)


class _Control:
    """Looks at the batch row at most every ``CONTROL_EVERY`` seconds: stops
    the run when someone paused or cancelled it, and writes the heartbeat."""

    def __init__(self, batch_id: int, stop: threading.Event) -> None:
        self.batch_id = batch_id
        self.stop = stop
        self._next = 0.0
        self._lock = threading.Lock()

    def check(self) -> None:
        with self._lock:
            if time.monotonic() < self._next:
                return
            self._next = time.monotonic() + CONTROL_EVERY
        alive = ResendBatch.objects.filter(pk=self.batch_id, state=BatchState.RUNNING).update(
            heartbeat_at=timezone.now()
        )
        if not alive:
            self.stop.set()


@dataclass
class RunResult:
    """What one run of a batch did (other workers may have sent the rest)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    paused_until: datetime.datetime | None = None


def run_batch(
    batch: ResendBatch,
    *,
    chunk: int | None = None,
    concurrency: int = 1,
    retries: int | None = None,
    max_retry_wait: float | None = None,
    on_result: ResultCallback | None = None,
) -> RunResult:
    """Send the pending addresses of ``batch`` (of one ``chunk`` only, if
    given), at most ``concurrency`` at a time, then finish the batch if
    nothing is left. Returns what this run did."""
    retries = app_settings.BULK_RETRIES if retries is None else retries
    max_wait = app_settings.BULK_MAX_RETRY_WAIT if max_retry_wait is None else max_retry_wait
    result = RunResult()
    stop = threading.Event()
    pacer = BatchPacer(batch.pk)
    rate = SharedRate(app_settings.BULK_RATE)
    control = _Control(batch.pk, stop)
    ledger = _ThreadLedger()
    lock = threading.Lock()
    actor = batch.started_by
    source = Source(batch.source)

    def send(row: tuple[int, str]) -> None:
        address_id, email = row
        control.check()
        if rate.paces or pacer.delay() > 0:
            ledger.write()  # an outcome never waits out a pace or a pause unwritten
        pacer.wait(stop)
        rate.wait(stop)
        if stop.is_set() or not ledger.claim(address_id):
            return
        attempt = 0
        while True:
            if attempt:
                rate.wait(stop)
            try:
                resend_reset_email(email, source=source, actor=actor)
            except (UpstreamRateLimited, CircuitOpen) as exc:
                wait = exc.retry_after if exc.retry_after is not None else DEFAULT_RETRY_WAIT
                pacer.pause(wait)
                if wait > max_wait or attempt >= retries or stop.is_set():
                    _release(address_id)
                    until = _pause(batch.pk, wait)
                    with lock:
                        result.paused_until = max(result.paused_until or until, until)
                    stop.set()
                    return
                attempt += 1
                pacer.wait(stop)
                continue
            except ConfigurationError as exc:
                _release(address_id)
                _end(batch.pk, BatchState.FAILED, str(exc)[:255])
                raise
            except BetatelResetError as exc:
                outcome = Outcome(exc.outcome)
            else:
                outcome = Outcome.SENT
            ledger.hold(address_id, outcome)
            with lock:
                result.outcomes[outcome] += 1
                if on_result is not None:
                    on_result(email, outcome)
            return

    # A queued batch starts with its first chunk; a paused or cancelled one
    # stays so (the first look at the row stops this run).
    ResendBatch.objects.filter(pk=batch.pk, state=BatchState.QUEUED).update(
        state=BatchState.RUNNING, heartbeat_at=timezone.now()
    )
    run_bounded(
        _pending(batch.pk, chunk, stop),
        send,
        concurrency=_usable_concurrency(concurrency),
        stop=stop,
        finish_thread=ledger.close,
    )
    if not stop.is_set():
        finish_if_done(batch.pk)
    return result


def _pending(batch_id: int, chunk: int | None, stop: threading.Event) -> Iterator[tuple[int, str]]:
    """The batch's pending addresses in order, as ``(id, email)`` (no model
    instance per address), read ``PAGE`` at a time."""
    rows = BatchAddress.objects.filter(batch_id=batch_id, state=AddressState.PENDING)
    if chunk is not None:
        rows = rows.filter(chunk=chunk)
    last = 0
    while not stop.is_set():
        page = list(rows.filter(id__gt=last).order_by("id").values_list("id", "email")[:PAGE])
        if not page:
            return
        yield from page
        last = page[-1][0]


class _ThreadLedger(threading.local):
    """What one thread of a run writes to the ledger.

    Its statements share one cursor, kept until the thread takes no more
    addresses: a new cursor for each cost nearly as much CPU as the statement
    itself (benchmark 8).

    The outcome of its last send is written with its next claim, one statement
    instead of two, or on its own when the thread is about to wait
    (``BULK_RATE``, a 429 pause) and when it stops. Until then the address
    stays in flight: a process killed meanwhile leaves it so, and resuming
    settles it from its audit row, written before the outcome came here. Only
    if that row was lost too (a crash of the database server under
    ``AUDIT_ASYNC_COMMIT``) is it in doubt, never sent again. Written on its
    own, an outcome could commit without waiting for the disk as the audit row
    does; it rarely is, so it keeps the claim's commit.
    """

    def __init__(self) -> None:
        self.held: tuple[int, Outcome] | None = None
        self._cursor: CursorWrapper | None = None

    def claim(self, address_id: int) -> bool:
        claimed = _claim(self._open(), address_id, done=self.held)
        self.held = None
        return claimed

    def hold(self, address_id: int, outcome: Outcome) -> None:
        self.held = (address_id, outcome)

    def write(self) -> None:
        if self.held is not None:
            _finish(self._open(), *self.held)
            self.held = None

    def close(self) -> None:
        """The thread takes no more addresses."""
        try:
            self.write()
        finally:
            if self._cursor is not None:
                self._cursor.close()
                self._cursor = None

    def _open(self) -> CursorWrapper:
        if self._cursor is None:
            self._cursor = connections[router.db_for_write(BatchAddress)].cursor()
        return self._cursor


def _claim(
    cursor: CursorWrapper, address_id: int, done: tuple[int, Outcome] | None = None
) -> bool:
    """Mark the address in flight; False when another process got it first.

    ``done``, another address and its outcome, is marked done by the same
    statement: two rows change when the claim succeeds, one when it does not.
    The statement commits before the request leaves, and waits for the disk
    as commits usually do: a claim lost to a crash of the database server
    would leave the address pending, to be sent again on resume, with its
    audit row (written after it) lost as well.
    """
    statements = _statements(cursor.db.alias)
    now = cursor.db.ops.adapt_datetimefield_value(timezone.now())
    if done is None:
        cursor.execute(statements.claim, [now, address_id])
        return bool(cursor.rowcount == 1)
    done_id, outcome = done
    cursor.execute(
        statements.claim_and_finish, [done_id, done_id, outcome, now, address_id, done_id]
    )
    return bool(cursor.rowcount == 2)


def _finish(cursor: CursorWrapper, address_id: int, outcome: Outcome) -> None:
    now = cursor.db.ops.adapt_datetimefield_value(timezone.now())
    cursor.execute(_statements(cursor.db.alias).finish, [outcome, now, address_id])


class _Statements(NamedTuple):
    claim: str
    claim_and_finish: str
    finish: str


@functools.cache
def _statements(alias: str) -> _Statements:
    """The ledger's ``UPDATE`` statements for database ``alias``, built once.

    By hand, like the audit row (``ResendAttempt.objects.record``): they run
    for every address of every batch, and ``QuerySet.update()`` compiles each
    one anew. The states, constants of ours, are written into the SQL (each
    parameter costs the client CPU to quote, benchmark 8); the ids, the
    outcome and the time are parameters.
    """
    table = connections[alias].ops.quote_name(BatchAddress._meta.db_table)
    pending, in_flight, done = (
        f"'{state}'" for state in (AddressState.PENDING, AddressState.IN_FLIGHT, AddressState.DONE)
    )
    # Only our own table, column names and states; the values are parameters.
    update = f"UPDATE {table} SET"
    return _Statements(
        claim=f"{update} state = {in_flight}, updated_at = %s WHERE id = %s AND state = {pending}",
        claim_and_finish=(
            f"{update} state = CASE WHEN id = %s THEN {done} ELSE {in_flight} END,"
            " outcome = CASE WHEN id = %s THEN %s ELSE outcome END, updated_at = %s"
            f" WHERE (id = %s AND state = {pending}) OR id = %s"
        ),
        finish=f"{update} state = {done}, outcome = %s, updated_at = %s WHERE id = %s",
    )


def _release(address_id: int) -> None:
    """Nothing was sent (Betatel refused it, or the site is misconfigured)."""
    BatchAddress.objects.filter(pk=address_id).update(
        state=AddressState.PENDING, updated_at=timezone.now()
    )


def _pause(batch_id: int, wait: float) -> datetime.datetime:
    until = timezone.now() + datetime.timedelta(seconds=wait)
    ResendBatch.objects.filter(pk=batch_id).exclude(state__in=ENDED).update(
        state=BatchState.PAUSED, resume_after=until, detail="Betatel asked to slow down (429)."
    )
    logger.warning("Batch %s paused by Betatel's 429 for %.0f s", batch_id, wait)
    return until


def _end(batch_id: int, state: BatchState, detail: str = "") -> None:
    ResendBatch.objects.filter(pk=batch_id).exclude(state__in=ENDED).update(
        state=state, detail=detail
    )


def finish_if_done(batch_id: int) -> bool:
    """Mark the batch finished once none of its addresses is pending or in flight."""
    open_states = (AddressState.PENDING, AddressState.IN_FLIGHT)
    if BatchAddress.objects.filter(batch_id=batch_id, state__in=open_states).exists():
        return False
    return bool(
        ResendBatch.objects.filter(pk=batch_id, state=BatchState.RUNNING).update(
            state=BatchState.FINISHED, heartbeat_at=timezone.now()
        )
    )


def send_now(
    addresses: Iterable[str],
    *,
    source: Source,
    actor: Any = None,
    concurrency: int = 1,
    retries: int | None = None,
    max_retry_wait: float | None = None,
) -> BulkSummary:
    """Record ``addresses`` as a batch and send it in this process.

    Addresses left unsent because Betatel paused the batch are counted as
    rate limited by Betatel in the summary; they stay pending in the batch,
    which can be resumed once its ``Retry-After`` has passed.
    """
    batch = create_batch(addresses, source=source, actor=actor)
    summary = BulkSummary()
    run_batch(
        batch,
        concurrency=concurrency,
        retries=retries,
        max_retry_wait=max_retry_wait,
        on_result=summary.add,
    )
    left = BatchAddress.objects.filter(batch=batch, state=AddressState.PENDING)
    for address in left.order_by("id").values_list("email", flat=True).iterator():
        summary.add(address, Outcome.UPSTREAM_RATE_LIMITED)
    summary.batch_id = batch.pk
    return summary


def set_state(batch: ResendBatch, state: BatchState) -> bool:
    """Pause or cancel a batch from the admin; running processes stop within
    ``CONTROL_EVERY`` seconds. False when it had already ended."""
    rows = ResendBatch.objects.filter(pk=batch.pk).exclude(state__in=ENDED)
    return bool(rows.update(state=state))
