"""The fake Betatel API in ``betatel_reset.testing``, exercised with plain ``requests``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from betatel_reset.testing import (
    RESEND_PATH,
    Behaviour,
    FakeBetatelServer,
    RecordedRequest,
    unused_port_url,
)
from tests.support.fake_betatel import FAKE_BETATEL_TOKEN

AUTH = {"Authorization": f"Bearer {FAKE_BETATEL_TOKEN}"}
EMAIL = {"email": "ada@example.com"}


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A session that ignores proxy and CA variables from the environment."""
    with requests.Session() as session:
        session.trust_env = False
        yield session


def resend(http: requests.Session, server: FakeBetatelServer, **kwargs: Any) -> requests.Response:
    kwargs = {"headers": AUTH, "json": EMAIL, "timeout": 5, **kwargs}
    return http.post(server.url + RESEND_PATH, **kwargs)


# The real contract


def test_resend_succeeds(http: requests.Session, fake_betatel: FakeBetatelServer) -> None:
    response = resend(http, fake_betatel)

    assert response.status_code == 200
    assert response.json() == {"message": "Reset password email sent successfully"}
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Content-Length"]) == len(response.content)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": FAKE_BETATEL_TOKEN}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_bad_token_is_unauthorized(
    http: requests.Session, fake_betatel: FakeBetatelServer, headers: dict[str, str]
) -> None:
    response = resend(http, fake_betatel, headers=headers)

    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


def test_token_none_accepts_any_bearer(http: requests.Session) -> None:
    with FakeBetatelServer(token=None) as server:
        assert resend(http, server, headers={}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [{}, {"json": {}}, {"json": ["ada@example.com"]}, {"json": {"email": 5}}, {"data": "{oops"}],
    ids=["empty", "no-email", "not-object", "not-string", "not-json"],
)
def test_bad_body_is_rejected(
    http: requests.Session, fake_betatel: FakeBetatelServer, body: dict[str, Any]
) -> None:
    response = http.post(fake_betatel.url + RESEND_PATH, headers=AUTH, timeout=5, **body)

    assert response.status_code == 400
    assert response.json() == {"message": "Email is required"}


def test_unknown_email_is_not_found_case_insensitively(http: requests.Session) -> None:
    with FakeBetatelServer(token=None, unknown_emails=["Ghost@Example.com"]) as server:
        response = resend(http, server, json={"email": "ghost@EXAMPLE.com"})

    assert response.status_code == 404
    assert response.json() == {"message": "User not found"}


def test_unknown_path_is_not_found(
    http: requests.Session, fake_betatel: FakeBetatelServer
) -> None:
    response = http.post(fake_betatel.url + "/api/nope", headers=AUTH, json=EMAIL, timeout=5)

    assert response.status_code == 404
    assert response.json() == {"message": "Not found"}


def test_other_method_is_not_allowed(
    http: requests.Session, fake_betatel: FakeBetatelServer
) -> None:
    response = http.get(fake_betatel.url + RESEND_PATH, headers=AUTH, timeout=5)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_requests_are_recorded_in_order(
    http: requests.Session, fake_betatel: FakeBetatelServer
) -> None:
    resend(http, fake_betatel)
    http.get(fake_betatel.url + "/other", timeout=5)

    first, second = fake_betatel.requests
    assert (first.method, first.path, first.bearer) == ("POST", RESEND_PATH, FAKE_BETATEL_TOKEN)
    assert first.json == EMAIL
    assert json.loads(first.body) == EMAIL
    assert first.headers["content-type"] == "application/json"
    assert (second.method, second.path, second.bearer, second.json) == (
        "GET",
        "/other",
        None,
        None,
    )


def test_recorded_request_repr_hides_the_token(
    http: requests.Session, fake_betatel: FakeBetatelServer
) -> None:
    resend(http, fake_betatel)

    (recorded,) = fake_betatel.requests
    assert FAKE_BETATEL_TOKEN not in repr(recorded)
    assert FAKE_BETATEL_TOKEN not in repr(fake_betatel.requests)
    assert "ada@example.com" in repr(recorded)


def test_bearer_is_none_without_authorization() -> None:
    recorded = RecordedRequest("POST", RESEND_PATH, {"authorization": "Basic abc"}, b"", None)

    assert recorded.bearer is None


# Behaviours


@pytest.mark.parametrize("code", [200, 400, 401, 403, 404, 429, 500, 502, 503, 504])
def test_status(http: requests.Session, fake_betatel: FakeBetatelServer, code: int) -> None:
    fake_betatel.behave(Behaviour.status(code))

    response = resend(http, fake_betatel)

    assert response.status_code == code
    assert response.json() == {"message": response.reason}
    assert "Retry-After" not in response.headers


def test_status_with_body_and_retry_after(
    http: requests.Session, fake_betatel: FakeBetatelServer
) -> None:
    fake_betatel.behave(Behaviour.status(429, body={"message": "Slow down"}, retry_after=2))

    response = resend(http, fake_betatel)

    assert response.status_code == 429
    assert response.json() == {"message": "Slow down"}
    assert response.headers["Retry-After"] == "2"


@pytest.mark.parametrize("code", [200, 502])
def test_html(http: requests.Session, fake_betatel: FakeBetatelServer, code: int) -> None:
    fake_betatel.behave(Behaviour.html(code))

    response = resend(http, fake_betatel)

    assert response.status_code == code
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


def test_invalid_json(http: requests.Session, fake_betatel: FakeBetatelServer) -> None:
    fake_betatel.behave(Behaviour.invalid_json())

    response = resend(http, fake_betatel)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_slow_answers_per_contract(
    http: requests.Session, fake_betatel: FakeBetatelServer
) -> None:
    fake_betatel.behave(Behaviour.slow(0.2))

    started = time.monotonic()
    response = resend(http, fake_betatel)

    assert time.monotonic() - started >= 0.2
    assert response.status_code == 200


def test_slow_exceeds_read_timeout_and_stop_does_not_wait(http: requests.Session) -> None:
    server = FakeBetatelServer(token=None).start()
    server.behave(Behaviour.slow(30))

    with pytest.raises(requests.ReadTimeout):
        resend(http, server, timeout=(2, 0.2))
    started = time.monotonic()
    server.stop()

    assert time.monotonic() - started < 1


def test_drip_sends_the_head_at_once_then_the_body_a_byte_at_a_time(
    http: requests.Session, fake_betatel: FakeBetatelServer
) -> None:
    interval = 0.02
    fake_betatel.behave(Behaviour.drip(interval))

    started = time.monotonic()
    with resend(http, fake_betatel, stream=True) as response:
        head_took = time.monotonic() - started
        gaps, body, last = [], b"", time.monotonic()
        while byte := response.raw.read(1):
            gaps.append(time.monotonic() - last)
            last = time.monotonic()
            body += byte

    assert response.status_code == 200
    assert json.loads(body) == {"message": "Reset password email sent successfully"}
    assert int(response.headers["Content-Length"]) == len(body)
    assert head_took < 25 * interval  # a dripped head (70 bytes) would take 1.4 s
    assert len(gaps) == len(body)  # one read per byte
    # The fake sleeps before every byte, so together they take at least that
    # long, however a loaded machine bunches two of them.
    assert sum(gaps) >= len(body) * interval * 0.95
    assert resend(http, fake_betatel).status_code == 200  # the connection is still usable


def test_drip_with_head_drips_the_status_line_too(
    http: requests.Session, fake_betatel: FakeBetatelServer
) -> None:
    interval = 0.005
    fake_betatel.behave(Behaviour.drip(interval, head=True))

    started = time.monotonic()
    with resend(http, fake_betatel, stream=True) as response:
        head_took = time.monotonic() - started
        body = response.raw.read()

    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 52\r\n\r\n"
    assert head_took >= len(head) * interval * 0.8
    assert json.loads(body) == {"message": "Reset password email sent successfully"}


def test_drip_stops_with_the_server(http: requests.Session) -> None:
    server = FakeBetatelServer(token=None).start()
    server.behave(Behaviour.drip(30, head=True))

    with pytest.raises(requests.ReadTimeout):
        resend(http, server, timeout=(2, 0.2))
    started = time.monotonic()
    server.stop()

    assert time.monotonic() - started < 1


def test_latency(http: requests.Session, fake_betatel: FakeBetatelServer) -> None:
    fake_betatel.latency = 0.2

    started = time.monotonic()
    response = resend(http, fake_betatel)

    assert time.monotonic() - started >= 0.2
    assert response.status_code == 200


def test_close_drops_the_connection(
    http: requests.Session, fake_betatel: FakeBetatelServer
) -> None:
    fake_betatel.behave(Behaviour.close())

    with pytest.raises(requests.ConnectionError):
        resend(http, fake_betatel)
    assert len(fake_betatel.requests) == 1  # recorded all the same


def test_huge_streams_and_tolerates_early_close(
    http: requests.Session, fake_betatel: FakeBetatelServer
) -> None:
    size = 50 * 1024 * 1024
    fake_betatel.behave(Behaviour.huge(size))

    with resend(http, fake_betatel, stream=True) as response:
        assert response.headers["Content-Length"] == str(size)
        first = response.raw.read(64 * 1024)
    assert len(first) == 64 * 1024
    assert first.startswith(b'{"padding": "')
    assert resend(http, fake_betatel).status_code == 200  # still serving


def test_huge_small_body_is_complete_json(
    http: requests.Session, fake_betatel: FakeBetatelServer
) -> None:
    fake_betatel.behave(Behaviour.huge(200_000))

    response = resend(http, fake_betatel)

    assert len(response.content) == 200_000
    assert set(response.json()) == {"padding"}


def test_redirect(http: requests.Session, fake_betatel: FakeBetatelServer) -> None:
    with FakeBetatelServer(token=FAKE_BETATEL_TOKEN) as other:
        fake_betatel.behave(Behaviour.redirect(other.url + RESEND_PATH, status=307))

        response = resend(http, fake_betatel, allow_redirects=False)

        assert response.status_code == 307
        assert response.headers["Location"] == other.url + RESEND_PATH


def test_queue_is_fifo_then_default(
    http: requests.Session, fake_betatel: FakeBetatelServer
) -> None:
    fake_betatel.behave(Behaviour.status(503), Behaviour.status(502))

    codes = [resend(http, fake_betatel).status_code for _ in range(3)]

    assert codes == [503, 502, 200]


def test_always_is_sticky_until_cleared(
    http: requests.Session, fake_betatel: FakeBetatelServer
) -> None:
    fake_betatel.always(Behaviour.status(500))
    fake_betatel.behave(Behaviour.status(429))

    codes = [resend(http, fake_betatel).status_code for _ in range(3)]
    fake_betatel.always(None)
    codes.append(resend(http, fake_betatel).status_code)

    assert codes == [429, 500, 500, 200]


def test_reset(http: requests.Session, fake_betatel: FakeBetatelServer) -> None:
    resend(http, fake_betatel)
    fake_betatel.behave(Behaviour.status(500))
    fake_betatel.always(Behaviour.status(503))
    fake_betatel.latency = 5

    fake_betatel.reset()

    assert fake_betatel.requests == []
    assert fake_betatel.latency == 0
    assert resend(http, fake_betatel).status_code == 200


# Connections


def test_unused_port_url_refuses_connections(http: requests.Session) -> None:
    url = unused_port_url()

    assert url.startswith("http://127.0.0.1:")
    with pytest.raises(requests.ConnectionError):
        http.post(url + RESEND_PATH, json=EMAIL, timeout=2)


def test_keep_alive_reuses_one_connection(
    http: requests.Session, fake_betatel: FakeBetatelServer
) -> None:
    assert resend(http, fake_betatel).status_code == 200
    assert resend(http, fake_betatel).status_code == 200

    assert fake_betatel.connections_accepted == 1


def test_tls_with_ca_bundle(http: requests.Session, fake_betatel_tls: FakeBetatelServer) -> None:
    assert fake_betatel_tls.url.startswith("https://127.0.0.1:")
    assert fake_betatel_tls.ca_bundle is not None

    response = resend(http, fake_betatel_tls, verify=fake_betatel_tls.ca_bundle)

    assert response.json() == {"message": "Reset password email sent successfully"}


def test_tls_without_ca_bundle_fails_verification(
    http: requests.Session, fake_betatel_tls: FakeBetatelServer
) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        resend(http, fake_betatel_tls)

    # One rejected handshake does not harm the server.
    assert resend(http, fake_betatel_tls, verify=fake_betatel_tls.ca_bundle).status_code == 200
    assert len(fake_betatel_tls.requests) == 1
