"""``PROXIES``: the http backend reaches Betatel through the proxy a site names,
tested through a real forwarding CONNECT proxy on 127.0.0.1, and never through
one the process environment names."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from betatel_reset.choices import Outcome
from betatel_reset.exceptions import UpstreamUnavailable
from betatel_reset.services import resend_reset_email
from betatel_reset.testing import FakeBetatelServer, unused_port_url

pytestmark = pytest.mark.django_db


class ConnectProxy:
    """A forwarding proxy that tunnels ``CONNECT host:port`` to 127.0.0.1 only,
    and records each request line it was sent."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.request_lines: list[str] = []
        self.headers: list[str] = []
        self._threads: list[threading.Thread] = []
        self._closing = False

    def __enter__(self) -> ConnectProxy:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing = True
        self.listener.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            self.request_lines.append(lines[0])
            self.headers.extend(lines[1:])
            method, target, _ = lines[0].split(" ", 2)
            host, _, port = target.rpartition(":")
            if method != "CONNECT" or host not in ("127.0.0.1", "localhost"):
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self._pipe(client, upstream)

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        while True:
            readable, _, _ = select.select([a, b], [], [], 5)
            if not readable:
                return
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (b if sock is a else a).sendall(data)


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    with ConnectProxy() as running:
        yield running


def point_at(settings: Any, server: FakeBetatelServer, **extra: Any) -> None:
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "API_URL": server.url,
        "TOKEN": server.token,
        "CA_BUNDLE": server.ca_bundle,
        **extra,
    }


def test_https_goes_through_the_named_proxy(
    settings: Any, fake_betatel_tls: FakeBetatelServer, proxy: ConnectProxy
) -> None:
    point_at(settings, fake_betatel_tls, PROXIES=proxy.url)

    assert resend_reset_email("ada@example.com").outcome == Outcome.SENT

    port = fake_betatel_tls.url.rsplit(":", 1)[1]
    assert [line.rsplit(" ", 1)[0] for line in proxy.request_lines] == [
        f"CONNECT 127.0.0.1:{port}"
    ]
    # Inside the tunnel, TLS to Betatel as usual; the proxy never sees the token.
    assert [r.json for r in fake_betatel_tls.requests] == [{"email": "ada@example.com"}]
    assert not any(fake_betatel_tls.token in header for header in proxy.headers)


def test_without_proxies_the_environment_is_ignored(
    settings: Any,
    fake_betatel_tls: FakeBetatelServer,
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    point_at(settings, fake_betatel_tls)

    assert resend_reset_email("ada@example.com").outcome == Outcome.SENT
    assert proxy.request_lines == []


def test_a_proxy_that_is_down_is_an_outage_not_a_crash(
    settings: Any, fake_betatel_tls: FakeBetatelServer
) -> None:
    point_at(settings, fake_betatel_tls, PROXIES=unused_port_url(), MAX_RETRIES=0)

    with pytest.raises(UpstreamUnavailable):
        resend_reset_email("ada@example.com")
    assert fake_betatel_tls.requests == []


def test_a_proxys_password_is_never_quoted(settings: Any) -> None:
    from django.core.checks import run_checks

    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "PROXIES": "ftp://u:hunter2@proxy:21"}
    [message] = [m for m in run_checks() if (m.id or "").startswith("betatel_reset.")]
    assert message.id == "betatel_reset.E007"
    assert "hunter2" not in message.msg + (message.hint or "")
