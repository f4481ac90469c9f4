"""Rate limits for the public pages, kept in Django's cache.

Limits are written ``"<count>/<period>"``: ``"3/15m"``, ``"20/h"``, ``"100/d"``.
Each is a fixed window counted with ``cache.add`` + ``cache.incr``, which are
atomic in Redis and in the local-memory cache, so concurrent requests (across
processes, with Redis) never admit more than the limit in a window.

Keys never hold an address or IP in the clear: they carry a keyed hash
(``salted_hmac`` with the site's ``SECRET_KEY``) of the normalised value, so a
leaked cache dump cannot be brute-forced back into addresses.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import re
import time
from dataclasses import dataclass

from django.http import HttpRequest
from django.utils.crypto import salted_hmac

from .addresses import mailbox_key
from .cache import CacheDown, reaching
from .conf import app_settings
from .exceptions import LimitsUnavailable, RateLimitExceeded

logger = logging.getLogger(__name__)

KEY_PREFIX = "betatel_reset:rl"
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PERIOD_RE = re.compile(r"^\s*(\d*)\s*([smhdw])\s*$")
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(.+)$")


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int  # seconds


@functools.lru_cache(maxsize=64)
def parse_period(text: str) -> int:
    """``"15m"`` → 900, ``"h"`` → 3600, ``"90d"`` → 7776000 (seconds)."""
    match = _PERIOD_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a period such as '30s', '15m', 'h' or '90d'.")
    count = int(match.group(1) or 1)
    if count <= 0:
        raise ValueError(f"{text!r} is not a positive period.")
    return count * UNITS[match.group(2)]


@functools.lru_cache(maxsize=64)
def parse_rate(text: str) -> Rate:
    """``"3/15m"`` → ``Rate(limit=3, period=900)``."""
    match = _RATE_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a rate such as '3/15m' or '20/h'.")
    return Rate(limit=int(match.group(1)), period=parse_period(match.group(2)))


def _rate_setting(value: str | None) -> Rate | None:
    """A ``RATE_LIMIT_*`` setting, already checked by its kind in ``conf``."""
    return None if value is None else parse_rate(value)


def client_ip(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, or the trusted proxy header when
    ``CLIENT_IP_HEADER`` names one (its last entry: the one the proxy added).

    An IPv4 client counts as its IPv4 address even when it arrives as an IPv6
    one (see :func:`ip_bucket`); other IPv6 clients count per /64, the block
    one subscriber usually holds. Without any usable address every such client
    shares the one bucket ``"unknown"``, which is logged once per process.
    """
    candidates = [request.META.get("REMOTE_ADDR", "")]
    header = app_settings.CLIENT_IP_HEADER
    if header:
        candidates.insert(0, request.META.get(header, "").split(",")[-1].strip())
    for value in candidates:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            continue
        return ip_bucket(address)
    _warn_shared_bucket()
    return "unknown"


#: RFC 6052's well-known NAT64 prefix: the last 32 bits are the IPv4 client.
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


def ip_bucket(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """What one client is counted as: an IPv4 address, or an IPv6 /64.

    A server listening on ``[::]`` sees IPv4 clients as ``::ffff:a.b.c.d``, and
    one behind NAT64 as ``64:ff9b::a.b.c.d``: per /64, every IPv4 client would
    share one bucket. Those, and 6to4 and Teredo addresses (whose IPv4 is the
    client's own, or its NAT's), count as the IPv4 address they carry.
    """
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    if address in NAT64_PREFIX:
        return str(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        return str(address.sixtofour)
    if address.teredo is not None:
        return str(address.teredo[1])
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


@functools.cache
def _warn_shared_bucket() -> None:
    """Say once per process that the per-IP limit cannot tell clients apart."""
    logger.warning(
        "No client address to rate-limit by: REMOTE_ADDR is empty or not an IP "
        "address and CLIENT_IP_HEADER gives none, so these visitors share one "
        "per-IP limit. Behind a proxy (on a Unix socket, say), set "
        "BETATEL_RESET['CLIENT_IP_HEADER'] to the header it sets, e.g. "
        "'HTTP_X_FORWARDED_FOR'."
    )


def _hash(scope: str, material: str) -> str:
    return salted_hmac(
        f"betatel_reset.ratelimit.{scope}", material, algorithm="sha256"
    ).hexdigest()[:32]


def _hit(scope: str, material: str, rate: Rate, now: float) -> None:
    """Count one request; raise :class:`RateLimitExceeded` past the limit."""
    window = int(now // rate.period)
    key = f"{KEY_PREFIX}:{scope}:{_hash(scope, material)}:{rate.period}:{window}"
    # The key outlives its window a little so clock skew between servers
    # cannot resurrect it.
    timeout = rate.period + 60
    with reaching("rate limits") as cache:
        if cache.add(key, 1, timeout):
            count = 1
        else:
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 0, timeout)
                count = cache.incr(key)
    if count > rate.limit:
        retry_after = max(1, math.ceil((window + 1) * rate.period - now))
        raise RateLimitExceeded(scope=scope, retry_after=retry_after)


def check_rate_limits(address: str, request: HttpRequest | None) -> None:
    """Count a public resend against the IP and address limits.

    The per-IP limit is checked first, so a client already over it cannot use
    up someone's per-address allowance. The same counters run whether or not
    the account exists: the answer reveals nothing.

    While the cache is unreachable, :class:`LimitsUnavailable` is raised (nothing
    is sent), or with ``CACHE_FAILURE = "open"`` the resend goes ahead uncounted.
    """
    now = time.time()
    ip_rate = _rate_setting(app_settings.RATE_LIMIT_IP)
    email_rate = _rate_setting(app_settings.RATE_LIMIT_EMAIL)
    try:
        if ip_rate is not None and request is not None:
            _hit("ip", client_ip(request), ip_rate, now)
        if email_rate is not None:
            _hit("email", mailbox_key(address), email_rate, now)
    except CacheDown:
        if app_settings.CACHE_FAILURE != "open":
            raise LimitsUnavailable() from None


def clear_rate_limits(address: str) -> int:
    """Forget the current window's count for ``address``; returns keys cleared.

    Raises :class:`LimitsUnavailable` while the cache is unreachable.
    """
    email_rate = _rate_setting(app_settings.RATE_LIMIT_EMAIL)
    if email_rate is None:
        return 0
    window = int(time.time() // email_rate.period)
    digest = _hash("email", mailbox_key(address))
    keys = [f"{KEY_PREFIX}:email:{digest}:{email_rate.period}:{w}" for w in (window - 1, window)]
    try:
        with reaching("rate limits") as cache:
            found = len(cache.get_many(keys))
            cache.delete_many(keys)
    except CacheDown:
        raise LimitsUnavailable() from None
    return found
