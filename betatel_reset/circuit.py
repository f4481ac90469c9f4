"""A circuit breaker in front of Betatel, its state shared through the cache.

After ``CIRCUIT_FAILURE_THRESHOLD`` consecutive failures (Betatel unavailable or
timing out) calls stop for ``CIRCUIT_COOLDOWN`` seconds: users get the "try again
in a few minutes" answer at once instead of tying up a web worker for the whole
timeout. When the cool-off ends one request is let through as a probe; its
success closes the circuit, its failure opens it again.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time

from .cache import CacheDown, reaching
from .conf import app_settings
from .exceptions import CircuitOpen

logger = logging.getLogger(__name__)

FAILURES_KEY = "betatel_reset:circuit:failures"
OPEN_UNTIL_KEY = "betatel_reset:circuit:open_until"
PROBE_KEY = "betatel_reset:circuit:probe"


def before_call() -> None:
    """Raise :class:`CircuitOpen` unless a call to Betatel may go ahead.

    While the cache is unreachable the breaker cannot count: calls go ahead
    (each still bounded by ``DEADLINE``), the outage is logged.
    """
    try:
        with reaching("the circuit breaker") as cache:
            open_until = cache.get(OPEN_UNTIL_KEY)
            if open_until is None:
                return
            now = time.time()
            if now < open_until:
                raise CircuitOpen(retry_after=max(1, math.ceil(open_until - now)))
            # Cool-off over: exactly one caller (across processes) gets to probe.
            if not cache.add(PROBE_KEY, 1, timeout=int(app_settings.DEADLINE) + 5):
                raise CircuitOpen(retry_after=1)
    except CacheDown:
        return
    logger.info("Betatel circuit half-open: sending one probe request")


def record_success() -> None:
    with contextlib.suppress(CacheDown), reaching("the circuit breaker") as cache:
        state = cache.get_many([FAILURES_KEY, OPEN_UNTIL_KEY])
        if state:
            cache.delete_many([FAILURES_KEY, OPEN_UNTIL_KEY, PROBE_KEY])
            if OPEN_UNTIL_KEY in state:
                logger.warning("Betatel circuit closed: a probe succeeded")


def record_failure() -> None:
    cooldown = app_settings.CIRCUIT_COOLDOWN
    # Failures older than a few cool-offs are forgotten: "consecutive" means recent.
    ttl = max(60, int(cooldown * 4))
    with contextlib.suppress(CacheDown), reaching("the circuit breaker") as cache:
        if cache.add(FAILURES_KEY, 1, ttl):
            failures = 1
        else:
            try:
                failures = cache.incr(FAILURES_KEY)
            except ValueError:
                cache.add(FAILURES_KEY, 1, ttl)
                failures = 1
        was_probe = cache.get(PROBE_KEY) is not None
        if failures >= app_settings.CIRCUIT_FAILURE_THRESHOLD or was_probe:
            cache.set(OPEN_UNTIL_KEY, time.time() + cooldown, timeout=int(cooldown) + ttl)
            cache.delete(PROBE_KEY)
            logger.warning(
                "Betatel circuit opened after %d consecutive failures; pausing calls for %.0f s",
                failures,
                cooldown,
            )


def is_open() -> bool:
    try:
        with reaching("the circuit breaker") as cache:
            open_until = cache.get(OPEN_UNTIL_KEY)
    except CacheDown:
        return False
    return open_until is not None and time.time() < open_until
