"""Betatel's pace, shared by every thread and every process of a batch.

:class:`BatchPacer` carries a 429's ``Retry-After`` through the cache
(``CACHE_ALIAS``, Redis in production) so that no worker of the batch sends
before it ends. Without the cache each process still keeps its own pace.
"""

from __future__ import annotations

import threading
import time

from .cache import CacheDown, reaching

#: Seconds between two looks at the batch row (paused or cancelled elsewhere?)
#: and two heartbeats written to it, per process; also the longest a paced
#: thread sleeps before looking again.
CONTROL_EVERY = 1.0


def pausing_key(batch_id: int) -> str:
    return f"betatel_reset:batch:{batch_id}:resume_at"


class BatchPacer:
    """After a 429, no thread of this process nor any process of the batch
    sends before the ``Retry-After`` ends (the cache carries it across
    processes; without the cache, each process still keeps its own pace)."""

    def __init__(self, batch_id: int) -> None:
        self.key = pausing_key(batch_id)
        self._resume_at = 0.0
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
        shared = 0.0
        try:
            with reaching("pausing a batch") as cache:
                shared = float(cache.get(self.key) or 0.0)
        except CacheDown:
            pass
        with self._lock:
            return max(self._resume_at, shared) - time.time()

    def wait(self, stop: threading.Event) -> None:
        while not stop.is_set() and (delay := self.delay()) > 0:
            stop.wait(min(delay, CONTROL_EVERY))
