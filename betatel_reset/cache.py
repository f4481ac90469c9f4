"""The cache the rate limits and the circuit breaker share, and its outages.

Both keep their counts in ``caches[CACHE_ALIAS]`` (Redis in production). When
that cache cannot be reached its client raises its own errors (Redis's,
memcached's …), which share no base class with Django's; :func:`reaching`
turns any of them into :class:`CacheDown` and logs the outage: at WARNING at
most once a minute per process, at INFO otherwise, so an outage does not
flood the logs or mail the site's admins.

What an outage means is decided by each user of the cache: the rate limits
follow ``CACHE_FAILURE`` (refuse public resends, or send them uncounted), and
the circuit breaker, an optimisation rather than a guard, lets calls through.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache

from .conf import app_settings
from .exceptions import BetatelResetError

logger = logging.getLogger(__name__)

#: Seconds between two WARNING lines about the same outage, per process.
WARN_EVERY = 60.0

_last_warning = 0.0
_warning_lock = threading.Lock()


class CacheDown(Exception):
    """The shared cache could not be reached (internal: never leaves the app)."""


@contextlib.contextmanager
def reaching(purpose: str) -> Iterator[BaseCache]:
    """The shared cache, for the cache calls in the ``with`` block.

    The app's own errors raised in the block pass through unchanged.
    """
    try:
        yield caches[app_settings.CACHE_ALIAS]
    except BetatelResetError:
        raise
    except Exception as exc:
        _log_outage(purpose, exc)
        raise CacheDown(purpose) from None


def _log_outage(purpose: str, exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    with _warning_lock:
        loud = now - _last_warning >= WARN_EVERY
        if loud:
            _last_warning = now
    logger.log(
        logging.WARNING if loud else logging.INFO,
        "The %r cache is unavailable for %s (%s: %s)",
        app_settings.CACHE_ALIAS,
        purpose,
        type(exc).__name__,
        exc,
    )
