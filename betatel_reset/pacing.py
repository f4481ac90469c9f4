"""Betatel's pace, shared by every thread and every process of a batch.

:class:`BatchPacer` carries a 429's ``Retry-After`` through the cache
(``CACHE_ALIAS``, Redis in production) so that no worker of the batch sends
before it ends. Without the cache each process still keeps its own pace.
:class:`SharedRate` keeps all workers of all batches within ``BULK_RATE``.
"""

from __future__ import annotations

import threading
import time

from .cache import CacheDown, reaching
from .exceptions import ConfigurationError
from .ratelimit import parse_rate

#: Seconds between two looks at the batch row (paused or cancelled elsewhere?)
#: and two heartbeats written to it, per process; also the longest a paced
#: thread sleeps before looking again.
CONTROL_EVERY = 1.0


def pausing_key(batch_id: int) -> str:
    return f"betatel_reset:batch:{batch_id}:resume_at"


class BatchPacer:
    """After a 429, no thread of this process nor any process of the batch
    sends before the ``Retry-After`` ends (the cache carries it across
    processes; without the cache, each process still keeps its own pace).
    Another process's pause is read from the cache at most every
    ``READ_EVERY`` seconds, not before every send."""

    READ_EVERY = 0.1

    def __init__(self, batch_id: int) -> None:
        self.key = pausing_key(batch_id)
        self._resume_at = 0.0
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        until = time.time() + seconds
        with self._lock:
            self._resume_at = max(self._resume_at, until)
        try:
            with reaching("pausing a batch") as cache:
                cache.set(self.key, until, timeout=int(seconds) + 1)
        except CacheDown:
            pass

    def delay(self) -> float:
        with self._lock:
            read = time.monotonic() - self._read_at >= self.READ_EVERY
            if read:
                self._read_at = time.monotonic()
        if read:
            try:
                with reaching("pausing a batch") as cache:
                    shared = float(cache.get(self.key) or 0.0)
            except CacheDown:
                shared = 0.0
            with self._lock:
                self._resume_at = max(self._resume_at, shared)
        with self._lock:
            return self._resume_at - time.time()

    def wait(self, stop: threading.Event) -> None:
        while not stop.is_set() and (delay := self.delay()) > 0:
            stop.wait(min(delay, CONTROL_EVERY))


class SharedRate:
    """``BULK_RATE``: sends per period for all workers of all batches together.

    Counted in fixed windows of the period (``"20/s"``: each second) with the
    cache's atomic increment, so N workers on M machines sharing Redis never
    exceed it within a window; the k-th send of a window leaves at its slot,
    k periods/limit into it, so they are spread evenly rather than sent in a
    burst. A sender over the limit waits for the next window. Should
    the cache be unreachable, each process keeps the whole
    rate to itself, one send every ``period / limit`` seconds.
    """

    def __init__(self, text: str | None) -> None:
        self.rate = parse_rate(text) if text else None
        if self.rate is not None and self.rate.limit < 1:
            raise ConfigurationError("BETATEL_RESET['BULK_RATE'] must allow at least one send.")
        self._lock = threading.Lock()
        self._next_local = 0.0

    @property
    def paces(self) -> bool:
        """Whether a send may have to wait for its slot (``BULK_RATE`` is set)."""
        return self.rate is not None

    def wait(self, stop: threading.Event) -> None:
        """Return once a send may leave (at once without ``BULK_RATE``)."""
        rate = self.rate
        while rate is not None and not stop.is_set():
            now = time.time()
            window = int(now // rate.period)
            try:
                count = self._count(f"{KEY_PREFIX}:{rate.period}:{window}", rate.period)
            except CacheDown:
                self._wait_locally(stop, rate.period / rate.limit)
                return
            if count <= rate.limit:
                # The k-th send of a window leaves at its slot, k periods/limit
                # into it: spread evenly, and never together with the next
                # window's. A slot already past by more than half that interval
                # (a sender who arrived late in the window) is given up.
                interval = rate.period / rate.limit
                late = time.time() - (window * rate.period + (count - 1) * interval)
                if late <= interval / 2:
                    stop.wait(max(0.0, -late))
                    return
                continue
            stop.wait((window + 1) * rate.period - now)

    def _count(self, key: str, period: int) -> int:
        timeout = period + 60
        with reaching("the bulk send rate") as cache:
            if cache.add(key, 1, timeout):
                return 1
            try:
                return int(cache.incr(key))
            except ValueError:  # expired between add and incr
                cache.add(key, 0, timeout)
                return int(cache.incr(key))

    def _wait_locally(self, stop: threading.Event, interval: float) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_local)
            self._next_local = start + interval
        stop.wait(start - now)


#: Prefix of the cache keys counting ``BULK_RATE``'s windows.
KEY_PREFIX = "betatel_reset:bulk_rate"
