"""The http backend over real sockets, against the local fake Betatel server."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from betatel_reset.backends.http import HttpBackend
from betatel_reset.choices import Outcome
from betatel_reset.exceptions import OutcomeUnknown, UpstreamUnavailable
from betatel_reset.models import ResendAttempt
from betatel_reset.services import resend_reset_email
from betatel_reset.testing import Behaviour, FakeBetatelServer, unused_port_url

pytestmark = pytest.mark.django_db


def point_at(settings: Any, server: FakeBetatelServer, **extra: Any) -> None:
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "API_URL": server.url,
        "TOKEN": server.token,
        **extra,
    }


def test_pooled_session_reuses_one_connection(
    settings: Any, fake_betatel: FakeBetatelServer
) -> None:
    point_at(settings, fake_betatel)
    for address in ["a@example.com", "b@example.com", "c@example.com"]:
        assert resend_reset_email(address).outcome == Outcome.SENT
    assert fake_betatel.connections_accepted == 1
    assert [r.json for r in fake_betatel.requests] == [
        {"email": "a@example.com"},
        {"email": "b@example.com"},
        {"email": "c@example.com"},
    ]
    assert {r.bearer for r in fake_betatel.requests} == {fake_betatel.token}


def test_https_with_a_ca_bundle(settings: Any, fake_betatel_tls: FakeBetatelServer) -> None:
    point_at(settings, fake_betatel_tls, CA_BUNDLE=fake_betatel_tls.ca_bundle)
    assert fake_betatel_tls.url.startswith("https://")
    result = resend_reset_email("ada@example.com")
    assert result.status_code == 200
    assert result.message == "Reset password email sent successfully"


def test_https_refuses_an_untrusted_certificate(
    settings: Any, fake_betatel_tls: FakeBetatelServer
) -> None:
    point_at(settings, fake_betatel_tls)
    with pytest.raises(UpstreamUnavailable, match="TLS handshake"):
        resend_reset_email("ada@example.com")
    assert fake_betatel_tls.requests == []


def test_an_answer_that_breaks_off_may_have_sent_the_email(
    settings: Any, fake_betatel: FakeBetatelServer
) -> None:
    # Betatel had the request and began to answer 200; then the connection
    # dropped. Whether the email went out is unknown, and recorded as such.
    point_at(settings, fake_betatel)
    fake_betatel.behave(Behaviour.drip(0.05))
    threading.Timer(0.3, fake_betatel.stop).start()

    with pytest.raises(OutcomeUnknown) as info:
        resend_reset_email("ada@example.com")

    assert info.value.status_code == 200
    assert "broke off" in str(info.value)
    row = ResendAttempt.objects.get()
    assert (row.outcome, row.status_code) == (Outcome.UNCERTAIN, 200)
    assert len(fake_betatel.requests) == 1


@pytest.mark.parametrize("head", [False, True], ids=["body-drips", "head-drips"])
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_deadline_ends_an_answer_that_drips(
    settings: Any, request: pytest.FixtureRequest, scheme: str, head: bool
) -> None:
    # One byte every 0.3 s: each read comes well within the read timeout, and
    # the whole answer would take 15 s or more. Only the deadline can end it.
    deadline = 1.0
    server = request.getfixturevalue("fake_betatel" if scheme == "http" else "fake_betatel_tls")
    point_at(settings, server, DEADLINE=deadline, CA_BUNDLE=server.ca_bundle)
    server.behave(Behaviour.drip(0.3, head=head))

    started = time.monotonic()
    with pytest.raises(OutcomeUnknown):
        resend_reset_email("ada@example.com")
    elapsed = time.monotonic() - started

    assert deadline * 0.9 <= elapsed < deadline + 1.0
    row = ResendAttempt.objects.get()  # nothing recorded as sent
    assert row.outcome == Outcome.UNCERTAIN
    assert row.status_code == (None if head else 200)
    assert len(server.requests) == 1


class ProxiedBackend(HttpBackend):
    """A site's backend that reaches Betatel through an HTTP proxy."""

    proxy = ""

    def create_session(self) -> requests.Session:
        session = super().create_session()
        session.proxies = {"http": self.proxy}
        return session


def test_deadline_holds_through_an_http_proxy(
    settings: Any, fake_betatel: FakeBetatelServer
) -> None:
    # The fake plays the proxy (it answers the absolute URL a proxy is sent);
    # nothing listens at API_URL, so only the proxy can answer.
    ProxiedBackend.proxy = fake_betatel.url
    point_at(
        settings,
        fake_betatel,
        API_URL=unused_port_url(),
        BACKEND=f"{__name__}.ProxiedBackend",
        DEADLINE=1.0,
    )
    fake_betatel.behave(Behaviour.drip(0.3, head=True))

    started = time.monotonic()
    with pytest.raises(OutcomeUnknown):
        resend_reset_email("ada@example.com")

    assert time.monotonic() - started < 2.0
    (proxied,) = fake_betatel.requests
    assert proxied.path.startswith("http://127.0.0.1:")


class TaggingBackend(HttpBackend):
    """A site's own backend: its session adds a header and sees every answer."""

    answers: list[int] = []

    def create_session(self) -> requests.Session:
        session = super().create_session()
        session.headers["X-Site"] = "shop"
        session.hooks["response"].append(
            lambda response, **kw: self.answers.append(response.status_code)
        )
        return session


def test_a_site_customises_the_session_with_create_session(
    settings: Any, fake_betatel: FakeBetatelServer
) -> None:
    point_at(settings, fake_betatel, BACKEND=f"{__name__}.TaggingBackend")
    TaggingBackend.answers.clear()
    resend_reset_email("ada@example.com")
    resend_reset_email("grace@example.com")
    assert [r.headers.get("x-site") for r in fake_betatel.requests] == ["shop", "shop"]
    assert TaggingBackend.answers == [200, 200]
    # The default headers and the token still go out with the site's session.
    assert {r.bearer for r in fake_betatel.requests} == {fake_betatel.token}
    assert fake_betatel.requests[0].headers["user-agent"].startswith("django-betatel-reset/")
