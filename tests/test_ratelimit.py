"""The limit format, the limiter and its use by the service."""

from __future__ import annotations

import logging
import re
import socket
import socketserver
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from django.core.cache import cache
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connections
from django.test import RequestFactory
from django.test.testcases import LiveServerThread

from betatel_reset import ratelimit
from betatel_reset.backends import locmem
from betatel_reset.choices import Source
from betatel_reset.exceptions import ConfigurationError, RateLimitExceeded
from betatel_reset.ratelimit import Rate, client_ip, parse_period, parse_rate
from betatel_reset.services import resend_reset_email

from .conftest import ENDPOINT

pytestmark = pytest.mark.django_db

RESEND_PATH = "/reset-password/resend/"


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

    @pytest.mark.parametrize(
        ("remote_addr", "bucket"),
        [
            ("203.0.113.7", "203.0.113.7"),
            ("::ffff:203.0.113.7", "203.0.113.7"),  # IPv4 on a [::] socket
            ("::FFFF:CB00:7107", "203.0.113.7"),
            ("64:ff9b::203.0.113.7", "203.0.113.7"),  # NAT64, well-known prefix
            ("2002:cb00:7107:5::1", "203.0.113.7"),  # 6to4
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),  # Teredo
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("64:ff9b:1::cb00:7107", "64:ff9b:1::/64"),  # a local NAT64 prefix: layout unknown
            ("fe80::1%eth0", "fe80::/64"),
        ],
    )
    def test_ipv4_clients_count_by_their_ipv4_address(self, remote_addr: str, bucket: str) -> None:
        assert client_ip(web_request(remote_addr)) == bucket

    def test_a_mapped_address_from_the_trusted_header(self, settings: Any) -> None:
        settings.BETATEL_RESET = {"CLIENT_IP_HEADER": "HTTP_X_FORWARDED_FOR"}
        request = web_request("::1", HTTP_X_FORWARDED_FOR="::ffff:198.51.100.9")
        assert client_ip(request) == "198.51.100.9"

    @pytest.mark.parametrize("remote_addr", [None, "", "unix:/run/gunicorn.sock", "<script>"])
    def test_no_usable_address(self, remote_addr: str | None) -> None:
        request = web_request()
        if remote_addr is None:
            del request.META["REMOTE_ADDR"]
        else:
            request.META["REMOTE_ADDR"] = remote_addr
        assert client_ip(request) == "unknown"

    def test_no_usable_address_is_logged_once_per_process(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        ratelimit._warn_shared_bucket.cache_clear()
        caplog.set_level(logging.DEBUG, logger="betatel_reset")
        try:
            client_ip(web_request("203.0.113.7"))
            assert caplog.records == []
            for _ in range(2):
                client_ip(web_request(""))
        finally:
            ratelimit._warn_shared_bucket.cache_clear()

        [record] = caplog.records
        assert (record.name, record.levelno) == ("betatel_reset.ratelimit", logging.WARNING)
        assert "BETATEL_RESET['CLIENT_IP_HEADER']" in record.getMessage()


# A real server listening on [::] ------------------------------------------------


class DualStackWSGIServer(ThreadedWSGIServer):
    """Django's runserver server on one IPv6 socket that takes IPv4 too, as
    ``gunicorn -b [::]:8000`` and ``runserver [::]:8000`` listen: an IPv4
    client's ``REMOTE_ADDR`` is ``::ffff:a.b.c.d``."""

    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # TCPServer's bind without HTTPServer's, which looks the host name up.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", self.server_address[1]
        self.setup_environ()


class DualStackSite(LiveServerThread):
    """The demo site on ``[::]``, in a thread sharing the test's database; it
    records the ``REMOTE_ADDR`` of every request."""

    server_class = DualStackWSGIServer

    def __init__(self, connections_override: dict[str, Any]) -> None:
        super().__init__("::", self.recording, connections_override)
        self.remote_addrs: list[str] = []

    def recording(self, app: Any) -> Any:
        def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
            self.remote_addrs.append(environ["REMOTE_ADDR"])
            return app(environ, start_response)

        return wrapped

    def visitor(self, source_ip: str) -> Visitor:
        """A browser whose connections leave from ``source_ip``, over IPv4."""
        return Visitor(f"http://127.0.0.1:{self.port}", source_ip)


class Visitor(requests.Session):
    def __init__(self, base: str, source_ip: str) -> None:
        super().__init__()
        self.base = base
        self.trust_env = False  # no proxy from the environment: loopback only
        self.mount("http://", SourceAddressAdapter(source_ip))

    def resend(self, email: str) -> int:
        """POST the resend form as a browser would; returns the status."""
        page = self.get(self.base + RESEND_PATH, timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token is not None, page.status_code
        response = self.post(
            self.base + RESEND_PATH,
            data={"email": email, "csrfmiddlewaretoken": token.group(1)},
            allow_redirects=False,
            timeout=10,
        )
        return response.status_code


class SourceAddressAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, source_ip: str) -> None:
        self.source_ip = source_ip
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, source_address=(self.source_ip, 0), **kwargs)


def _skip_unless_bindable(family: socket.AddressFamily, host: str, why: str) -> None:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((host, 0))
        except OSError as exc:
            pytest.skip(f"{why} ({exc})")


@pytest.fixture
def dual_stack_site() -> Iterator[DualStackSite]:
    if not socket.has_ipv6:
        pytest.skip("needs IPv6: Python was built without it")
    _skip_unless_bindable(socket.AF_INET6, "::", "needs a dual-stack IPv6 socket on [::]")
    for source in ("127.0.0.2", "127.0.0.3"):
        _skip_unless_bindable(
            socket.AF_INET, source, f"needs {source} as a source address (Linux has all of 127/8)"
        )
    shared = {
        conn.alias: conn
        for conn in connections.all()
        if conn.vendor == "sqlite" and conn.is_in_memory_db()
    }
    for conn in shared.values():
        conn.inc_thread_sharing()
    site = DualStackSite(shared)
    site.daemon = True
    site.start()
    site.is_ready.wait(timeout=10)
    try:
        if site.error:
            raise site.error
        yield site
    finally:
        site.terminate()
        for conn in shared.values():
            conn.dec_thread_sharing()


@pytest.mark.django_db(transaction=True)
def test_ipv4_clients_of_a_dual_stack_server_get_their_own_limits(
    settings: Any, locmem_backend: None, clock: Clock, dual_stack_site: DualStackSite
) -> None:
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "RATE_LIMIT_IP": "2/h",
        "RATE_LIMIT_EMAIL": None,
    }
    first = dual_stack_site.visitor("127.0.0.2")
    second = dual_stack_site.visitor("127.0.0.3")

    assert [first.resend(f"first{i}@example.com") for i in range(3)] == [302, 302, 429]
    assert second.resend("second@example.com") == 302

    assert set(dual_stack_site.remote_addrs) == {"::ffff:127.0.0.2", "::ffff:127.0.0.3"}
    assert [r.email for r in locmem.outbox] == [
        "first0@example.com",
        "first1@example.com",
        "second@example.com",
    ]
