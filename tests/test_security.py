"""The promises in SECURITY.md that no other module holds: production settings
pass ``check --deploy``; an unknown account costs our code exactly the work of a
real send (checked deterministically, then measured against the fake server);
the admin pages refuse whoever is not allowed in; the token stays out of
Django's error reports and goes nowhere but Betatel, and no piece of it that
Betatel echoes reaches an audit row; the audit table keeps only
the columns SECURITY.md lists."""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.views.debug import ExceptionReporter

from betatel_reset.backends import locmem
from betatel_reset.backends.http import clean_message
from betatel_reset.choices import Outcome
from betatel_reset.exceptions import AuthenticationFailed
from betatel_reset.models import ResendAttempt
from betatel_reset.services import resend_reset_email
from betatel_reset.testing import Behaviour, FakeBetatelServer, unused_port_url
from tests.conftest import grant, make_jwt
from tests.support.fake_betatel import FAKE_BETATEL_TOKEN

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
RESEND = "/reset-password/resend/"
KNOWN = "ada@example.com"
UNKNOWN = "ghost@example.com"
SECRET_TOKEN = "fake-secret-token-must-never-leak"


# Production settings ---------------------------------------------------------


def test_check_deploy_is_clean_on_production_settings() -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "example.com",
        "BETATEL_API_TOKEN": "fake-production-like-token",
        "DATABASE_URL": "sqlite:///:memory:",
    }

    run = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    assert "System check identified no issues (0 silenced)." in run.stdout
    assert "WARNING" not in run.stdout + run.stderr


# Enumeration safety: the same work on both branches ------------------------------


@pytest.fixture
def betatel(settings: Any) -> Iterator[FakeBetatelServer]:
    """The fake Betatel, knowing ``UNKNOWN`` as an unknown account, answering
    every request after the same fixed latency; public rate limits off."""
    with FakeBetatelServer(
        token=FAKE_BETATEL_TOKEN, unknown_emails={UNKNOWN}, latency=0.02
    ) as server:
        settings.BETATEL_RESET = {
            **settings.BETATEL_RESET,
            "BACKEND": "http",
            "API_URL": server.url,
            "TOKEN": FAKE_BETATEL_TOKEN,
            "RATE_LIMIT_EMAIL": None,
            "RATE_LIMIT_IP": None,
        }
        yield server


def _statement(sql: str) -> str:
    """``INSERT INTO "t" (...) VALUES (...)`` → ``INSERT INTO "t"``: the shape, not the values."""
    match = re.match(r'\s*(\w+)(?:.*?\b(?:INTO|FROM|UPDATE)\s+("\w+"))?', sql, re.DOTALL)
    return " ".join(filter(None, match.groups())) if match else sql


def _work(client: Client, caplog: pytest.LogCaptureFixture, email: str) -> dict[str, Any]:
    """What one public resend costs our own code, in countable terms."""
    caplog.clear()
    with CaptureQueriesContext(connection) as queries:
        response = client.post(RESEND, {"email": email})
    return {
        "status": response.status_code,
        "location": response.get("Location"),
        "cookies": sorted(response.cookies),
        "queries": [_statement(query["sql"]) for query in queries.captured_queries],
        "log records": [
            (record.name, record.levelname)
            for record in caplog.records
            if not record.name.startswith("urllib3")
        ],
    }


def test_unknown_account_costs_the_same_work_as_a_real_send(
    client: Client, betatel: FakeBetatelServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client.post(RESEND, {"email": KNOWN})  # warm up: the pooled connection is open

    known = _work(client, caplog, KNOWN)
    unknown = _work(client, caplog, UNKNOWN)

    assert [r.json for r in betatel.requests][-2:] == [{"email": KNOWN}, {"email": UNKNOWN}]
    assert known == unknown
    assert known["status"] == 302
    assert known["log records"] == [("betatel_reset.services", "INFO")]
    assert ResendAttempt.objects.filter(outcome=Outcome.UNKNOWN_ACCOUNT).count() == 1


@dataclass(frozen=True)
class Comparison:
    median_difference: float  # seconds, unknown minus known
    p_value: float  # two-sided Mann-Whitney U, normal approximation

    #: A difference a remote attacker could hope to measure over the Internet.
    THRESHOLD = 0.005
    #: Strict, so noise on a busy machine does not fail the suite.
    ALPHA = 0.001

    @property
    def distinguishable(self) -> bool:
        return abs(self.median_difference) >= self.THRESHOLD and self.p_value < self.ALPHA

    @property
    def indistinguishable(self) -> bool:
        return abs(self.median_difference) < self.THRESHOLD and self.p_value >= self.ALPHA


def mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation, ties averaged)."""
    ranked = sorted([(value, 0) for value in a] + [(value, 1) for value in b])
    ranks = [0.0] * len(ranked)
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    n1, n2 = len(a), len(b)
    rank_sum = sum(rank for rank, (_, group) in zip(ranks, ranked, strict=True) if group == 0)
    u = rank_sum - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    sd = math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    z = (u - mean) / sd
    return math.erfc(abs(z) / math.sqrt(2))


def compare(
    client: Client, fake: FakeBetatelServer, rounds: int, extra_for_unknown: float = 0.0
) -> Comparison:
    """Time ``rounds`` resends for each branch, interleaved (alternating which
    goes first) so drift in the machine's load hits both alike."""
    times: dict[str, list[float]] = {KNOWN: [], UNKNOWN: []}
    for _ in range(3):  # warm up: templates loaded, the connection pooled
        client.post(RESEND, {"email": KNOWN})
        client.post(RESEND, {"email": UNKNOWN})
    for i in range(rounds):
        for email in (KNOWN, UNKNOWN) if i % 2 == 0 else (UNKNOWN, KNOWN):
            if email == UNKNOWN and extra_for_unknown:
                fake.behave(Behaviour.slow(extra_for_unknown))
            started = time.perf_counter()
            response = client.post(RESEND, {"email": email})
            times[email].append(time.perf_counter() - started)
            assert response.status_code == 302
    return Comparison(
        median_difference=statistics.median(times[UNKNOWN]) - statistics.median(times[KNOWN]),
        p_value=mann_whitney_p(times[KNOWN], times[UNKNOWN]),
    )


def test_known_and_unknown_accounts_answer_equally_fast(
    client: Client, betatel: FakeBetatelServer
) -> None:
    result = compare(client, betatel, rounds=60)

    assert result.indistinguishable, result
    outcomes = set(ResendAttempt.objects.values_list("outcome", flat=True))
    assert outcomes == {Outcome.SENT, Outcome.UNKNOWN_ACCOUNT}


def test_the_timing_comparison_detects_15_ms_of_extra_work(
    client: Client, betatel: FakeBetatelServer
) -> None:
    # The self-check: had our code done 15 ms more work for unknown accounts
    # (simulated by a slower answer on that branch only), the test above fails.
    result = compare(client, betatel, rounds=30, extra_for_unknown=0.015)

    assert result.distinguishable, result
    assert not result.indistinguishable


def test_mann_whitney_p() -> None:
    assert mann_whitney_p([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]) == pytest.approx(1.0)
    assert mann_whitney_p(list(range(30)), [x + 100.0 for x in range(30)]) < 1e-9
    assert mann_whitney_p([1.0] * 10, [1.0] * 10 + [2.0]) > 0.5  # ties do not crash


# Admin pages refuse whoever is not allowed in -----------------------------------

User = get_user_model()
AUDIT = "/admin/betatel_reset/resendattempt/"
USERS = "/admin/auth/user/"


def make_user(username: str, *perms: str, is_staff: bool = True) -> Any:
    user = User.objects.create_user(username, f"{username}@example.com", "pw", is_staff=is_staff)
    return grant(user, *perms)


@pytest.fixture
def ada() -> Any:
    return User.objects.create_user("ada", KNOWN)


@pytest.mark.parametrize("who", ["anonymous", "non-staff"])
@pytest.mark.parametrize(
    "url",
    [AUDIT, USERS, "send-button"],
    ids=["audit-changelist", "user-changelist", "send-button"],
)
def test_admin_pages_send_outsiders_to_the_login_page(
    client: Client, locmem_backend: None, ada: Any, who: str, url: str
) -> None:
    if url == "send-button":
        url = reverse("admin:betatel_reset_resendattempt_send", args=[ada.pk])
    if who == "non-staff":
        client.force_login(make_user("mallory", "betatel_reset.send_reset_email", is_staff=False))

    for response in (
        client.get(url),
        client.post(url, {"action": "resend_reset_email_action", "_selected_action": [ada.pk]}),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    assert locmem.outbox == []
    assert not ResendAttempt.objects.exists()


def test_staff_without_view_permission_cannot_read_the_audit_trail(client: Client) -> None:
    client.force_login(make_user("clerk", "auth.view_user"))
    ResendAttempt.objects.create(email=KNOWN, source="web", outcome=Outcome.SENT)

    assert client.get(AUDIT).status_code == 403
    assert AUDIT not in client.get("/admin/").content.decode()  # not even listed


def test_staff_without_the_send_permission_cannot_retry_from_the_audit_trail(
    client: Client, locmem_backend: None
) -> None:
    failed = ResendAttempt.objects.create(email=KNOWN, source="web", outcome=Outcome.FAILED)
    client.force_login(make_user("auditor", "betatel_reset.view_resendattempt"))

    response = client.post(
        AUDIT, {"action": "retry_failed_attempts", "_selected_action": [failed.pk]}, follow=True
    )

    assert response.status_code == 200
    assert locmem.outbox == []
    assert ResendAttempt.objects.count() == 1


# The token goes to Betatel only ------------------------------------------------


class TimeLimitExceeded(Exception):
    """What a time limit raises from its signal handler, wherever the code
    happens to be (as Celery's soft time limit does)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` in this (the main) thread after ``seconds``."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeLimitExceeded(f"over the time limit of {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def hanging_betatel() -> Iterator[str]:
    """A Betatel on 127.0.0.1 that takes the connection (the kernel accepts it
    into the backlog) and the request, and never answers; yields its URL."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def frames_of(tb: TracebackType | None) -> Iterator[FrameType]:
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def test_error_reports_of_an_unexpected_failure_hold_no_token(settings: Any, rf: Any) -> None:
    # Betatel hangs, and a time limit interrupts the call inside the real
    # transport: requests, urllib3 and http.client are on the stack, holding
    # the request and its Authorization header. What the limit raises is no
    # error of ours, so it escapes as a 500, and Django's error report (the
    # admins' email, Sentry-like handlers) lists every frame's variables: none
    # may show the token.
    with hanging_betatel() as url:
        settings.BETATEL_RESET = {**settings.BETATEL_RESET, "API_URL": url, "TOKEN": SECRET_TOKEN}
        request = rf.post(RESEND, {"email": KNOWN})
        with time_limit(0.3), pytest.raises(TimeLimitExceeded) as info:
            resend_reset_email(KNOWN, request=request)

    # The limit struck while the transport waited for the answer, and the
    # transport's own frames do hold the token: only the report may hide it.
    frames = list(frames_of(info.tb))
    names = [frame.f_code.co_name for frame in frames]
    transport = frames[names.index("_attempt") + 1 :]
    assert any("urllib3" in frame.f_code.co_filename for frame in transport)
    assert any(
        SECRET_TOKEN in repr(value) for frame in transport for value in frame.f_locals.values()
    )

    reporter = ExceptionReporter(request, info.type, info.value, info.tb)
    assert len(reporter.get_traceback_frames()) == len(frames)
    assert SECRET_TOKEN not in reporter.get_traceback_text()
    assert SECRET_TOKEN not in reporter.get_traceback_html()


def test_proxy_and_netrc_settings_in_the_environment_are_ignored(
    settings: Any, fake_betatel: FakeBetatelServer, monkeypatch: Any, tmp_path: Path
) -> None:
    # Were they read, the request (bearer header included) would go to this
    # proxy, where nothing listens; and the netrc would swap the bearer header
    # for someone's Basic credentials.
    proxy = unused_port_url()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login eve password not-ours\n")
    monkeypatch.setenv("NETRC", str(netrc))
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "API_URL": fake_betatel.url,
        "TOKEN": FAKE_BETATEL_TOKEN,
    }

    assert resend_reset_email(KNOWN).outcome == Outcome.SENT
    (received,) = fake_betatel.requests
    assert received.bearer == FAKE_BETATEL_TOKEN


# Token fragments in Betatel's answers ----------------------------------------------

#: A token the size of Betatel's (about 200 characters).
JWT = make_jwt(
    sub="svc-reset-7f3a9c",
    iss="https://auth.betatel.example",
    exp=4102444800,
    jti="8c1d0e5b-2f4a-4b7e-9a61-3d5f7c2e9b10",
)
#: The shortest run of the token's characters that must never be shown.
RUN = 12


def holds_a_run_of(token: str, text: str) -> bool:
    """Whether ``text`` holds 12 consecutive characters of ``token``, in any
    case and with any white space between them."""
    squeezed = "".join(text.split()).casefold()
    folded = token.casefold()
    return any(folded[i : i + RUN] in squeezed for i in range(len(folded) - RUN + 1))


@pytest.mark.parametrize(
    "echo",
    [
        pytest.param(JWT.upper(), id="upper-cased"),
        pytest.param(JWT[:RUN], id="12-character-prefix"),
        pytest.param(JWT[90 : 90 + RUN], id="12-characters-from-the-middle"),
        pytest.param(JWT[:100] + "\n" + JWT[100:], id="split-by-a-line-break"),
        pytest.param(
            " ".join(JWT[i : i + 16] for i in range(0, len(JWT), 16)), id="split-by-spaces"
        ),
    ],
)
def test_fragments_of_the_token_in_betatels_answer_are_redacted(
    settings: Any, fake_betatel: FakeBetatelServer, caplog: pytest.LogCaptureFixture, echo: str
) -> None:
    assert 180 <= len(JWT) <= 260
    caplog.set_level(logging.DEBUG)
    fake_betatel.token = JWT
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "API_URL": fake_betatel.url, "TOKEN": JWT}
    fake_betatel.behave(Behaviour.status(401, body={"message": f"Bad token: {echo} (expired)"}))

    with pytest.raises(AuthenticationFailed) as info:
        resend_reset_email(KNOWN)

    detail = ResendAttempt.objects.get().detail
    assert detail.startswith("Betatel rejected the API token")
    assert "Bad token: [redacted] (expired)" in detail
    seen = [detail, str(info.value), repr(info.value), repr(vars(info.value))]
    seen += [logging.Formatter().format(record) for record in caplog.records]
    for text in seen:
        assert not holds_a_run_of(JWT, text), text


def test_eleven_characters_of_the_token_may_remain() -> None:
    # The threshold: shorter runs stay as Betatel wrote them (11 characters of
    # a 200-character token say next to nothing about the rest).
    fragment = JWT[50:61]

    cleaned = clean_message(f"token ending {fragment} refused", redact=JWT)

    assert cleaned == f"token ending {fragment} refused"
    assert clean_message(f"token ending {JWT[50:62]} refused", redact=JWT) == (
        "token ending [redacted] refused"
    )


# Personal data in the audit table -------------------------------------------------


def test_audit_rows_keep_only_what_security_md_lists() -> None:
    # Adding a column (an IP, a user agent…) must come with an update of SECURITY.md.
    fields = {field.name for field in ResendAttempt._meta.get_fields()}

    assert fields == {
        "id",
        "created_at",
        "email",
        "source",
        "actor",
        "outcome",
        "status_code",
        "duration_ms",
        "detail",
    }


# SECURITY.md cites tests that exist ----------------------------------------------


def test_security_md_cites_only_tests_that_exist() -> None:
    # Citations read like `tests/test_x.py::test_name[param-id]`; a following
    # `::name`, `test_name` or `[param-id]` refers to the file (and test) last named.
    text = (ROOT / "SECURITY.md").read_text()
    citation = re.compile(r"(tests/[\w/]+\.py)?(?:::)?((?:test_|Test)\w+)?(?:\[([\w-]+)\])?")
    source, checked = "", 0
    for token in re.findall(r"`([^`\n]+)`", text):
        match = citation.fullmatch(token)
        if not match or not any(match.groups()):
            continue
        path, name, param_id = match.groups()
        if path:
            assert (ROOT / path).is_file(), path
            source = (ROOT / path).read_text()
        if name:
            assert re.search(rf"^\s*(?:def|class) {name}\b", source, re.MULTILINE), token
        if param_id:
            plain = re.sub(r"^(resend|expired)-", "", param_id)
            assert f'"{plain}"' in source, token
        checked += 1
    assert checked > 40
