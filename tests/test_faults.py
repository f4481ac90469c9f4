"""End to end against a misbehaving Betatel.

Each case drives the whole stack: a real HTTP client (``requests``) talks to
the demo site served by pytest-django's live server (``project.urls``), whose
``http`` backend calls the local fake Betatel in :mod:`betatel_reset.testing`
over real sockets. For every way Betatel can misbehave the test checks what the
user sees (page, status, message, whether the address stays in the form), the
audit row, that the request ended within the configured time budget, and that
the API token is nowhere but in the ``Authorization`` header Betatel received:
not in a response, a log record, the audit row or an exception.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import responses
from django.forms.models import model_to_dict

from betatel_reset.choices import Outcome, Source
from betatel_reset.models import ResendAttempt
from betatel_reset.services import resend_reset_email
from betatel_reset.signals import resend_failed, resend_sent
from betatel_reset.testing import RESEND_PATH, Behaviour, FakeBetatelServer, unused_port_url
from tests.conftest import ENDPOINT
from tests.support.fake_betatel import FAKE_BETATEL_TOKEN

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = FAKE_BETATEL_TOKEN
ADDRESS = "ada@example.com"
#: Both public pages; ``url`` rather than ``page``, which is pytest-playwright's fixture.
PAGES = pytest.mark.parametrize(
    "url", ["/reset-password/resend/", "/reset-password/expired/"], ids=["resend", "expired"]
)

CONNECT_TIMEOUT = 0.5
READ_TIMEOUT = 0.5
DEADLINE = 1.5
#: Django rendering the page and the client's own round trip, on a busy machine.
MARGIN = 1.0
MAX_RESPONSE_BYTES = 64 * 1024

#: What Betatel says in its own bodies; a user must never see it.
UPSTREAM_TEXT = "upstream-node-7-says-kaboom"
SUCCESS = "a new reset link will arrive there within a few minutes"
UNAVAILABLE = "We couldn&#x27;t send the email right now. Please try again in a few minutes."

_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


# The stack ---------------------------------------------------------------------


class Visitor:
    """A user's browser, as far as the pages care: cookies, CSRF, forms."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.http.trust_env = False  # 127.0.0.1 only: no proxy from the environment
        # One connection per request (see _done): no server thread outlives the
        # test on a keep-alive connection and touches the database after teardown.
        self.http.headers["Connection"] = "close"
        self.responses: list[requests.Response] = []

    def get(self, path: str) -> requests.Response:
        response = self.http.get(self.base_url + path, allow_redirects=False, timeout=10)
        return self._done(response)

    def submit(self, path: str, email: str) -> requests.Response:
        """Open the page and post its form, as a browser does; redirects are not followed."""
        form = self.get(path)
        assert form.status_code == 200
        match = _CSRF_INPUT.search(form.text)
        assert match, "the form has no CSRF token"
        assert "csrftoken" in self.http.cookies
        response = self.http.post(
            self.base_url + path,
            data={"csrfmiddlewaretoken": match.group(1), "email": email},
            allow_redirects=False,
            timeout=10,
        )
        return self._done(response)

    def _done(self, response: requests.Response) -> requests.Response:
        self.http.close()  # drops the pooled connection; the cookies stay
        self.responses.append(response)
        return response

    def close(self) -> None:
        self.http.close()


@dataclass
class Upstream:
    """The fake Betatel the site calls, and what a fault case may change about it."""

    fake: FakeBetatelServer
    settings: Any
    request: pytest.FixtureRequest
    #: Other hosts started for the test (the target of a redirect).
    others: list[FakeBetatelServer] = field(default_factory=list)

    def configure(self, **overrides: Any) -> None:
        self.settings.BETATEL_RESET = {**self.settings.BETATEL_RESET, **overrides}

    def use(self, server: FakeBetatelServer, **overrides: Any) -> None:
        """Point the site at ``server`` instead of the plain-HTTP fake."""
        self.fake = server
        self.configure(API_URL=server.url, **overrides)

    def another_host(self) -> FakeBetatelServer:
        """A second fake server that accepts any token: it must never get one."""
        server = FakeBetatelServer(token=None).start()
        self.request.addfinalizer(server.stop)
        self.others.append(server)
        return server


@pytest.fixture
def upstream(
    settings: Any, fake_betatel: FakeBetatelServer, request: pytest.FixtureRequest
) -> Upstream:
    """The site's http backend pointed at the fake server, with short timeouts.

    The circuit breaker is out of the way (one test below covers it); the public
    rate limits stay on, as in production.
    """
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "BACKEND": "http",
        "API_URL": fake_betatel.url,
        "TOKEN": TOKEN,
        "CONNECT_TIMEOUT": CONNECT_TIMEOUT,
        "READ_TIMEOUT": READ_TIMEOUT,
        "DEADLINE": DEADLINE,
        "MAX_RETRIES": 1,
        "RETRY_MAX_WAIT": 0.2,
        "MAX_RESPONSE_BYTES": MAX_RESPONSE_BYTES,
        "CIRCUIT_FAILURE_THRESHOLD": 1000,
    }
    return Upstream(fake=fake_betatel, settings=settings, request=request)


@pytest.fixture
def visitor(live_server: Any) -> Iterator[Visitor]:
    host, port = live_server.thread.httpd.server_address[:2]
    assert host == "127.0.0.1"
    person = Visitor(f"http://{host}:{port}")
    yield person
    person.close()


@dataclass
class Captured:
    """Everything the app said about the attempt: log records and the errors it raised."""

    caplog: pytest.LogCaptureFixture
    errors: list[BaseException] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)

    def texts(self) -> Iterator[str]:
        formatter = logging.Formatter()
        for record in self.caplog.records:
            yield record.getMessage()
            yield repr(record.args)
            yield formatter.format(record)
            yield repr(vars(record))
        for error in self.errors:
            seen: BaseException | None = error
            while seen is not None:
                yield str(seen)
                yield repr(seen)
                yield repr(vars(seen))
                seen = seen.__cause__ or seen.__context__
        for result in self.results:
            yield repr(result)


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[Captured]:
    """Log records at every level (the live server's thread included) and the
    errors and results the service announced through its signals."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="betatel_reset")
    seen = Captured(caplog)

    def on_failed(error: BaseException, **kwargs: Any) -> None:
        seen.errors.append(error)

    def on_sent(result: Any, **kwargs: Any) -> None:
        seen.results.append(result)

    resend_failed.connect(on_failed, weak=False, dispatch_uid="test_faults.failed")
    resend_sent.connect(on_sent, weak=False, dispatch_uid="test_faults.sent")
    yield seen
    resend_failed.disconnect(dispatch_uid="test_faults.failed")
    resend_sent.disconnect(dispatch_uid="test_faults.sent")


def assert_token_absent(visitor: Visitor, captured: Captured) -> None:
    for response in visitor.responses:
        assert TOKEN not in response.text
        assert TOKEN not in repr(dict(response.headers))
    for row in ResendAttempt.objects.all():
        assert TOKEN not in repr(model_to_dict(row))
    for text in captured.texts():
        assert TOKEN not in text


def assert_address_not_logged(captured: Captured) -> None:
    """Log lines carry the masked address (``a***@example.com``), never the address."""
    formatter = logging.Formatter()
    for record in captured.caplog.records:
        assert ADDRESS not in formatter.format(record)


def assert_success_page(visitor: Visitor, page: str, response: requests.Response) -> None:
    """Redirected back to the same page, which then says what a real send says."""
    assert response.status_code == 302
    assert response.headers["Location"] == page
    assert "no-store" in response.headers["Cache-Control"]
    after = visitor.get(page)
    assert after.status_code == 200
    assert SUCCESS in after.text
    assert f'value="{ADDRESS}"' not in after.text  # the form starts empty again
    assert UPSTREAM_TEXT not in after.text


def assert_unavailable_page(response: requests.Response) -> None:
    """The form again, with the "try later" alert and the address still filled in."""
    assert response.status_code == 503
    assert "no-store" in response.headers["Cache-Control"]
    html = response.text
    assert "<h1>" in html
    assert 'role="alert"' in html
    assert UNAVAILABLE in html
    assert f'value="{ADDRESS}"' in html
    assert SUCCESS not in html
    assert UPSTREAM_TEXT not in html
    assert "Traceback" not in html


# The fault cases ---------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One way Betatel misbehaves and what the user and the audit trail must show."""

    arrange: Callable[[Upstream], None]
    #: The user is told the email is on its way (True) or to try later (False).
    looks_sent: bool
    outcome: Outcome
    #: Betatel's HTTP status in the audit row; None when no answer arrived.
    status_code: int | None
    #: Requests the fake Betatel receives: never a second one that could send twice.
    upstream_requests: int = 1


def answer(*behaviours: Behaviour) -> Callable[[Upstream], None]:
    def arrange(upstream: Upstream) -> None:
        upstream.fake.behave(*behaviours)

    return arrange


def status(code: int, **kwargs: Any) -> Callable[[Upstream], None]:
    return answer(Behaviour.status(code, body={"message": UPSTREAM_TEXT}, **kwargs))


def normal(upstream: Upstream) -> None:
    pass


def latency_under_the_read_timeout(upstream: Upstream) -> None:
    upstream.fake.latency = READ_TIMEOUT / 2


def nothing_listening(upstream: Upstream) -> None:
    upstream.configure(API_URL=unused_port_url())


def redirect_to_another_host(code: int) -> Callable[[Upstream], None]:
    def arrange(upstream: Upstream) -> None:
        elsewhere = upstream.another_host()
        upstream.fake.behave(Behaviour.redirect(elsewhere.url + RESEND_PATH, status=code))

    return arrange


def tls(upstream: Upstream) -> None:
    server = upstream.request.getfixturevalue("fake_betatel_tls")
    upstream.use(server, CA_BUNDLE=server.ca_bundle)


def tls_untrusted_certificate(upstream: Upstream) -> None:
    upstream.use(upstream.request.getfixturevalue("fake_betatel_tls"), CA_BUNDLE=None)


def token_echoed_back(upstream: Upstream) -> None:
    upstream.fake.behave(
        Behaviour.status(401, body={"message": f"Invalid bearer token {TOKEN} for this API"})
    )


def token_copied_with(extra: str) -> Callable[[Upstream], None]:
    """A token pasted with a stray character: a line break from a secrets file,
    a typographic character from a web page."""

    def arrange(upstream: Upstream) -> None:
        upstream.configure(TOKEN=TOKEN + extra)

    return arrange


FAULTS = [
    pytest.param(Fault(normal, True, Outcome.SENT, 200), id="upstream-200"),
    pytest.param(Fault(status(400), True, Outcome.UNKNOWN_ACCOUNT, 400), id="upstream-400"),
    pytest.param(Fault(status(401), False, Outcome.AUTH_FAILED, 401), id="upstream-401"),
    pytest.param(Fault(status(403), False, Outcome.AUTH_FAILED, 403), id="upstream-403"),
    pytest.param(Fault(status(404), True, Outcome.UNKNOWN_ACCOUNT, 404), id="upstream-404"),
    pytest.param(
        Fault(status(429, retry_after=30), False, Outcome.UPSTREAM_RATE_LIMITED, 429),
        id="upstream-429-retry-after",
    ),
    pytest.param(Fault(status(500), False, Outcome.FAILED, 500), id="upstream-500"),
    pytest.param(Fault(status(502), False, Outcome.FAILED, 502), id="upstream-502"),
    pytest.param(Fault(status(503), False, Outcome.FAILED, 503), id="upstream-503"),
    pytest.param(Fault(status(504), False, Outcome.FAILED, 504), id="upstream-504"),
    pytest.param(
        Fault(
            answer(Behaviour.status(503, retry_after=0)),
            True,
            Outcome.SENT,
            200,
            upstream_requests=2,  # the one retry a 503 with a short Retry-After allows
        ),
        id="upstream-503-short-retry-after-then-200",
    ),
    pytest.param(
        Fault(answer(Behaviour.html(200)), False, Outcome.FAILED, 200), id="html-page-200"
    ),
    pytest.param(
        Fault(answer(Behaviour.invalid_json()), False, Outcome.FAILED, 200), id="invalid-json"
    ),
    pytest.param(
        Fault(answer(Behaviour.slow(10 * READ_TIMEOUT)), False, Outcome.UNCERTAIN, None),
        id="slower-than-read-timeout",
    ),
    pytest.param(
        # One byte every 0.3 s, each within READ_TIMEOUT: only DEADLINE ends it.
        Fault(answer(Behaviour.drip(0.3)), False, Outcome.UNCERTAIN, 200),
        id="answer-dripping",
    ),
    pytest.param(
        Fault(answer(Behaviour.drip(0.3, head=True)), False, Outcome.UNCERTAIN, None),
        id="status-line-dripping",
    ),
    pytest.param(
        Fault(answer(Behaviour.close()), False, Outcome.UNCERTAIN, None),
        id="closed-without-answer",
    ),
    pytest.param(
        Fault(nothing_listening, False, Outcome.FAILED, None, upstream_requests=0),
        id="connection-refused",
    ),
    pytest.param(
        Fault(answer(Behaviour.huge(16 * MAX_RESPONSE_BYTES)), False, Outcome.FAILED, 200),
        id="huge-body",
    ),
    pytest.param(
        Fault(redirect_to_another_host(302), False, Outcome.FAILED, 302),
        id="redirect-302-to-another-host",
    ),
    pytest.param(
        Fault(redirect_to_another_host(307), False, Outcome.FAILED, 307),
        id="redirect-307-to-another-host",
    ),
    pytest.param(
        Fault(latency_under_the_read_timeout, True, Outcome.SENT, 200),
        id="latency-under-read-timeout",
    ),
    pytest.param(Fault(tls, True, Outcome.SENT, 200), id="tls"),
    pytest.param(
        Fault(tls_untrusted_certificate, False, Outcome.FAILED, None, upstream_requests=0),
        id="tls-untrusted-certificate",
    ),
    pytest.param(
        Fault(token_echoed_back, False, Outcome.AUTH_FAILED, 401),
        id="upstream-401-echoing-the-token",
    ),
    pytest.param(
        Fault(token_copied_with("\n"), False, Outcome.MISCONFIGURED, None, upstream_requests=0),
        id="token-with-a-trailing-newline",
    ),
    pytest.param(
        Fault(
            token_copied_with("\u2026"), False, Outcome.MISCONFIGURED, None, upstream_requests=0
        ),
        id="token-with-a-non-ascii-character",
    ),
]


@pytest.mark.parametrize("fault", FAULTS)
@PAGES
def test_fault(
    upstream: Upstream, visitor: Visitor, captured: Captured, fault: Fault, url: str
) -> None:
    fault.arrange(upstream)

    response = visitor.submit(url, ADDRESS)
    elapsed = response.elapsed.total_seconds()  # from sending the POST to its answer

    if fault.looks_sent:
        assert_success_page(visitor, url, response)
    else:
        assert_unavailable_page(response)
    assert elapsed < DEADLINE + MARGIN

    row = ResendAttempt.objects.get()
    assert (row.email, row.source, row.outcome) == (ADDRESS, Source.WEB, fault.outcome)
    assert row.status_code == fault.status_code
    assert row.duration_ms <= DEADLINE * 1000 + 100

    received = upstream.fake.requests
    assert len(received) == fault.upstream_requests
    for sent in received:
        assert (sent.method, sent.path, sent.bearer) == ("POST", RESEND_PATH, TOKEN)
        assert sent.json == {"email": ADDRESS}
    for elsewhere in upstream.others:
        assert elsewhere.requests == []
        assert elsewhere.connections_accepted == 0
    assert_token_absent(visitor, captured)
    assert_address_not_logged(captured)


def test_open_circuit_answers_at_once_without_calling_betatel(
    upstream: Upstream, visitor: Visitor, captured: Captured
) -> None:
    upstream.configure(CIRCUIT_FAILURE_THRESHOLD=2, CIRCUIT_COOLDOWN=60)
    upstream.fake.always(Behaviour.slow(10 * READ_TIMEOUT))

    for user in ["ada@example.com", "grace@example.com"]:
        assert visitor.submit("/reset-password/resend/", user).status_code == 503
    assert len(upstream.fake.requests) == 2
    connections = upstream.fake.connections_accepted

    response = visitor.submit("/reset-password/resend/", ADDRESS)

    assert_unavailable_page(response)
    assert response.elapsed.total_seconds() < READ_TIMEOUT  # it did not wait for Betatel
    assert len(upstream.fake.requests) == 2
    assert upstream.fake.connections_accepted == connections
    outcomes = list(ResendAttempt.objects.order_by("id").values_list("outcome", flat=True))
    # Late answers may have sent their emails, and still count as Betatel failing.
    assert outcomes == [Outcome.UNCERTAIN, Outcome.UNCERTAIN, Outcome.CIRCUIT_OPEN]
    assert_token_absent(visitor, captured)


# One attempt's time budget -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("timeouts", "expected"),
    [((3.05, 8.0, 12.0), (3.05, 8.0)), ((1.0, 3.0, 2.0), (0.5, 1.5))],
    ids=["timeouts-fit-in-the-deadline", "timeouts-shrink-to-the-deadline"],
)
def test_connect_and_read_timeouts_together_fit_in_the_deadline(
    settings: Any,
    mocked: responses.RequestsMock,
    timeouts: tuple[float, float, float],
    expected: tuple[float, float],
) -> None:
    # A slow connect followed by a slow answer cannot be staged on the loopback
    # interface, where connecting is instant; so this checks the timeouts the
    # backend hands to requests: a worst-case attempt still ends by the deadline.
    connect, read, deadline = timeouts
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "CONNECT_TIMEOUT": connect,
        "READ_TIMEOUT": read,
        "DEADLINE": deadline,
    }
    mocked.post(ENDPOINT, json={"message": "Reset password email sent successfully"})

    resend_reset_email(ADDRESS)

    given = mocked.calls[0].request.req_kwargs["timeout"]  # type: ignore[attr-defined]
    assert given == pytest.approx(expected, abs=0.05)
    assert sum(given) <= deadline
