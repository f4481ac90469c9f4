"""The limit format, the limiter and its use by the service."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from django.core.cache import cache
from django.test import RequestFactory

from betatel_reset import ratelimit
from betatel_reset.backends import locmem
from betatel_reset.choices import Source
from betatel_reset.exceptions import ConfigurationError, RateLimitExceeded
from betatel_reset.ratelimit import Rate, client_ip, parse_period, parse_rate
from betatel_reset.services import resend_reset_email

from .conftest import ENDPOINT

pytestmark = pytest.mark.django_db


class Clock:
    """Stands in for ``time.time`` inside the limiter: time moves only when told."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(ratelimit.time, "time", clock)
    return clock


@pytest.fixture
def limits(settings: Any, locmem_backend: None) -> None:
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "RATE_LIMIT_EMAIL": "3/15m",
        "RATE_LIMIT_IP": "20/h",
    }


def web_request(ip: str = "203.0.113.7", **meta: str) -> Any:
    return RequestFactory().post("/", REMOTE_ADDR=ip, **meta)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("3/15m", Rate(3, 900)),
        ("20/h", Rate(20, 3600)),
        ("20/1h", Rate(20, 3600)),
        (" 5 / 30s ", Rate(5, 30)),
        ("100/d", Rate(100, 86400)),
        ("1/2w", Rate(1, 1_209_600)),
        ("0/m", Rate(0, 60)),
    ],
)
def test_parse_rate(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "3", "3/", "/m", "3/15", "3/15x", "-1/m", "3/0m", "a/m"])
def test_parse_rate_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="is not a"):
        parse_rate(text)


def test_parse_period() -> None:
    assert parse_period("90d") == 90 * 86400
    assert parse_period("m") == 60


def test_email_limit_admits_exactly_the_limit(limits: None, clock: Clock) -> None:
    for _ in range(3):
        resend_reset_email("ada@example.com", request=web_request())
    with pytest.raises(RateLimitExceeded) as info:
        resend_reset_email("ada@example.com", request=web_request())
    assert info.value.scope == "email"
    assert len(locmem.outbox) == 3


def test_email_limit_ignores_case_and_spacing(limits: None, clock: Clock) -> None:
    for address in ["ada@example.com", "ADA@example.com", " Ada@EXAMPLE.com "]:
        resend_reset_email(address, request=web_request())
    with pytest.raises(RateLimitExceeded):
        resend_reset_email("aDa@example.com", request=web_request())


def test_retry_after_counts_down_to_the_window_end(limits: None, clock: Clock) -> None:
    clock.now = 1_800_000_000.0  # a multiple of 900: the start of a window
    for _ in range(3):
        resend_reset_email("ada@example.com", request=web_request())
    clock.now += 600
    with pytest.raises(RateLimitExceeded) as info:
        resend_reset_email("ada@example.com", request=web_request())
    assert info.value.retry_after == 300


def test_window_rolls_over(limits: None, clock: Clock) -> None:
    for _ in range(3):
        resend_reset_email("ada@example.com", request=web_request())
    with pytest.raises(RateLimitExceeded):
        resend_reset_email("ada@example.com", request=web_request())
    clock.now += 900
    resend_reset_email("ada@example.com", request=web_request())
    assert len(locmem.outbox) == 4


def test_ip_limit_across_addresses(settings: Any, locmem_backend: None, clock: Clock) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "RATE_LIMIT_IP": "2/h"}
    resend_reset_email("a@example.com", request=web_request())
    resend_reset_email("b@example.com", request=web_request())
    with pytest.raises(RateLimitExceeded) as info:
        resend_reset_email("c@example.com", request=web_request())
    assert info.value.scope == "ip"
    # Another client is not affected.
    resend_reset_email("c@example.com", request=web_request("198.51.100.1"))


def test_ip_over_limit_does_not_use_up_the_address_allowance(
    settings: Any, locmem_backend: None, clock: Clock
) -> None:
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "RATE_LIMIT_IP": "1/h",
        "RATE_LIMIT_EMAIL": "2/h",
    }
    resend_reset_email("a@example.com", request=web_request("203.0.113.1"))
    for _ in range(5):
        with pytest.raises(RateLimitExceeded):
            resend_reset_email("victim@example.com", request=web_request("203.0.113.1"))
    resend_reset_email("victim@example.com", request=web_request("203.0.113.2"))


def test_limits_can_be_turned_off(settings: Any, locmem_backend: None) -> None:
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "RATE_LIMIT_EMAIL": None,
        "RATE_LIMIT_IP": None,
    }
    for _ in range(10):
        resend_reset_email("ada@example.com", request=web_request())
    assert len(locmem.outbox) == 10


def test_bad_rate_setting_is_a_configuration_error(settings: Any, locmem_backend: None) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "RATE_LIMIT_EMAIL": "lots"}
    with pytest.raises(ConfigurationError, match="RATE_LIMIT_EMAIL"):
        resend_reset_email("ada@example.com", request=web_request())


@pytest.mark.parametrize("source", [Source.ADMIN, Source.COMMAND, Source.TASK, Source.API])
def test_other_sources_bypass_public_limits(limits: None, clock: Clock, source: Source) -> None:
    for _ in range(3):
        resend_reset_email("ada@example.com", request=web_request())
    with pytest.raises(RateLimitExceeded):
        resend_reset_email("ada@example.com", request=web_request())
    resend_reset_email("ada@example.com", source=source)
    assert len(locmem.outbox) == 4


def test_unknown_accounts_count_like_real_ones(
    settings: Any, mocked: responses.RequestsMock, clock: Clock
) -> None:
    # The limit answers identically whether or not the account exists.
    from betatel_reset.exceptions import AddressRejected

    mocked.post(ENDPOINT, status=404, json={"message": "User not found"})
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "RATE_LIMIT_EMAIL": "2/h"}
    for _ in range(2):
        with pytest.raises(AddressRejected):
            resend_reset_email("ghost@example.com", request=web_request())
    with pytest.raises(RateLimitExceeded) as info:
        resend_reset_email("ghost@example.com", request=web_request())
    assert info.value.retry_after > 0
    assert len(mocked.calls) == 2


def test_cache_keys_hold_no_address(limits: None, clock: Clock) -> None:
    resend_reset_email("ada.secret@example.com", request=web_request("203.0.113.99"))
    keys = list(cache._cache.keys())  # type: ignore[attr-defined]
    assert keys
    assert not [k for k in keys if "ada" in k.lower() or "203.0.113.99" in k]


def test_key_hash_depends_on_secret_key(settings: Any) -> None:
    first = ratelimit._hash("email", "ada@example.com")
    settings.SECRET_KEY = "another-test-secret"
    assert ratelimit._hash("email", "ada@example.com") != first


def test_clear_rate_limits(limits: None, clock: Clock) -> None:
    for _ in range(3):
        resend_reset_email("ada@example.com", request=web_request())
    assert ratelimit.clear_rate_limits("ADA@example.com") == 1
    resend_reset_email("ada@example.com", request=web_request())


class TestClientIp:
    def test_remote_addr_by_default(self) -> None:
        request = web_request("203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.9")
        assert client_ip(request) == "203.0.113.7"

    def test_trusted_header_last_entry(self, settings: Any) -> None:
        settings.BETATEL_RESET = {"CLIENT_IP_HEADER": "HTTP_X_FORWARDED_FOR"}
        request = web_request("10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.9")
        assert client_ip(request) == "198.51.100.9"

    def test_garbage_header_falls_back_to_remote_addr(self, settings: Any) -> None:
        settings.BETATEL_RESET = {"CLIENT_IP_HEADER": "HTTP_X_FORWARDED_FOR"}
        request = web_request("10.0.0.2", HTTP_X_FORWARDED_FOR="<script>")
        assert client_ip(request) == "10.0.0.2"

    def test_ipv6_counted_per_64(self) -> None:
        assert client_ip(web_request("2001:db8:1:2:3:4:5:6")) == "2001:db8:1:2::/64"

    def test_missing_address(self) -> None:
        request = web_request()
        del request.META["REMOTE_ADDR"]
        assert client_ip(request) == "unknown"
