"""DELIVERY = "queued": the page checks, records and queues; a task sends and
fills in the same audit row. Also RESPONSE_FLOOR, the confirmation's address
and check W007. Timing against real sockets: tests/test_delivery_timing.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from importlib.util import find_spec
from typing import Any

import pytest
import requests
import responses
from django.core.checks import run_checks
from django.test import Client
from django.urls import reverse

from betatel_reset import circuit, delivery, signals
from betatel_reset.choices import Outcome
from betatel_reset.models import ResendAttempt

from .conftest import ENDPOINT, TOKEN, expect_resends

pytestmark = pytest.mark.django_db

FRAMEWORK = "django.tasks" if find_spec("django.tasks") else "django_tasks"
DUMMY = f"{FRAMEWORK}.backends.dummy.DummyBackend"
IMMEDIATE = f"{FRAMEWORK}.backends.immediate.ImmediateBackend"
RESEND = reverse("betatel_reset:resend")
SENT = "a new reset link will arrive there within a few minutes"


@pytest.fixture
def queued(settings: Any) -> Iterator[list[Any]]:
    """Queued delivery on a backend that keeps tasks (no worker): yields its results."""
    settings.TASKS = {"default": {"BACKEND": DUMMY}}
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "DELIVERY": "queued",
        "RETRY_MAX_WAIT": 0,
        "MAX_RETRIES": 0,
    }
    backend = delivery.task_backends["default"]
    backend.clear()
    yield backend.results
    backend.clear()


def rows() -> list[tuple[str, str]]:
    return list(ResendAttempt.objects.order_by("id").values_list("email", "outcome"))


def run_queued(results: list[Any]) -> list[str]:
    """What a worker does: run each queued task once; returns their outcomes."""
    return [r.task.call(*r.args, **r.kwargs) for r in results]


def test_the_page_queues_and_answers_without_calling_betatel(
    client: Client, queued: list[Any], mocked: responses.RequestsMock
) -> None:
    response = client.post(RESEND, {"email": "Ada@Example.com"}, follow=True)

    assert response.redirect_chain == [(RESEND, 302)]
    assert SENT in response.content.decode()
    assert len(mocked.calls) == 0  # nothing registered: a call would fail the test
    [row] = ResendAttempt.objects.all()
    assert (row.email, row.source, row.outcome) == ("Ada@example.com", "web", Outcome.QUEUED)
    [result] = queued
    assert result.args == ["Ada@example.com"]
    assert result.kwargs["row_id"] == row.pk
    assert TOKEN not in repr((result.args, result.kwargs))  # nothing secret in the queue


def test_the_task_fills_in_the_queued_row_and_sends_the_signals(
    client: Client, queued: list[Any], mocked: responses.RequestsMock
) -> None:
    seen: list[str] = []

    def record(name: str) -> Any:
        def handler(sender: Any, **kwargs: Any) -> None:
            seen.append(f"{name} {kwargs['email']}")

        return handler

    handlers = {
        signals.resend_requested: record("requested"),
        signals.resend_sent: record("sent"),
        signals.resend_failed: record("failed"),
    }
    for signal, handler in handlers.items():
        signal.connect(handler)
    try:
        client.post(RESEND, {"email": "ada@example.com"})
        client.post(RESEND, {"email": "ghost@example.com"})
        assert rows() == [
            ("ada@example.com", Outcome.QUEUED),
            ("ghost@example.com", Outcome.QUEUED),
        ]
        assert seen == ["requested ada@example.com", "requested ghost@example.com"]
        expect_resends(mocked, sent="ada@example.com", unknown="ghost@example.com")

        assert run_queued(queued) == [Outcome.SENT, Outcome.UNKNOWN_ACCOUNT]
    finally:
        for signal, handler in handlers.items():
            signal.disconnect(handler)

    # The same two rows, now with their outcomes: not a second row each.
    assert rows() == [
        ("ada@example.com", Outcome.SENT),
        ("ghost@example.com", Outcome.UNKNOWN_ACCOUNT),
    ]
    assert ResendAttempt.objects.get(email="ada@example.com").status_code == 200
    assert seen[2:] == ["sent ada@example.com", "failed ghost@example.com"]


def test_an_unknown_account_gets_the_same_answer(
    client: Client, queued: list[Any], mocked: responses.RequestsMock
) -> None:
    known = client.post(RESEND, {"email": "ada@example.com"})
    unknown = client.post(RESEND, {"email": "ghost@example.com"})

    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])


def test_an_open_circuit_still_answers_503_at_once(client: Client, queued: list[Any]) -> None:
    for _ in range(5):
        circuit.record_failure()

    response = client.post(RESEND, {"email": "ada@example.com"})

    assert response.status_code == 503
    assert queued == []
    assert rows() == [("ada@example.com", Outcome.CIRCUIT_OPEN)]


def test_rate_limits_apply_before_queuing(client: Client, queued: list[Any]) -> None:
    answers = [client.post(RESEND, {"email": "ada@example.com"}).status_code for _ in range(4)]

    assert answers == [302, 302, 302, 429]
    assert len(queued) == 3


def test_a_refusing_queue_answers_503_and_says_so_in_the_audit_trail(
    client: Client, queued: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("the broker is down")

    monkeypatch.setattr(delivery.task_backends["default"], "enqueue", refuse)

    response = client.post(RESEND, {"email": "ada@example.com"})

    assert response.status_code == 503
    [row] = ResendAttempt.objects.all()
    assert (row.outcome, row.detail) == (Outcome.FAILED, "The task queue refused the resend.")


def test_with_the_immediate_backend_queued_sends_in_the_request(
    client: Client, settings: Any, mocked: responses.RequestsMock
) -> None:
    settings.TASKS = {"default": {"BACKEND": IMMEDIATE}}
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "DELIVERY": "queued"}
    expect_resends(mocked, sent="ada@example.com")

    assert client.post(RESEND, {"email": "ada@example.com"}).status_code == 302
    assert rows() == [("ada@example.com", Outcome.SENT)]


# Retries: only what cannot send a second email, within QUEUED_RETRY_WINDOW ---------


def test_a_429_with_retry_after_is_retried(
    client: Client, queued: list[Any], mocked: responses.RequestsMock
) -> None:
    client.post(RESEND, {"email": "ada@example.com"})
    mocked.post(ENDPOINT, status=429, headers={"Retry-After": "1"}, json={"message": "slow"})
    mocked.post(ENDPOINT, json={"message": "ok"})

    assert run_queued(queued) == [Outcome.SENT]
    assert len(mocked.calls) == 2
    assert rows() == [
        ("ada@example.com", Outcome.UPSTREAM_RATE_LIMITED),
        ("ada@example.com", Outcome.SENT),
    ]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"body": requests.ReadTimeout("no answer")}, id="no-answer-in-time"),
        pytest.param({"status": 500, "json": {"message": "boom"}}, id="500"),
        pytest.param({"status": 503, "json": {"message": "down"}}, id="503-without-retry-after"),
        pytest.param({"status": 429, "json": {"message": "slow"}}, id="429-without-retry-after"),
    ],
)
def test_what_may_have_sent_or_says_no_wait_is_not_retried(
    client: Client, queued: list[Any], mocked: responses.RequestsMock, answer: dict[str, Any]
) -> None:
    client.post(RESEND, {"email": "ada@example.com"})
    mocked.post(ENDPOINT, **answer)

    run_queued(queued)

    assert len(mocked.calls) == 1
    assert len(rows()) == 1


def test_no_connection_is_retried_until_the_window_ends(
    client: Client, queued: list[Any], settings: Any, mocked: responses.RequestsMock
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "QUEUED_RETRY_WINDOW": 1.5}
    client.post(RESEND, {"email": "ada@example.com"})
    mocked.post(ENDPOINT, body=requests.ConnectTimeout("no connection"))
    started = time.monotonic()

    assert run_queued(queued) == [Outcome.FAILED]

    # Tried at once and after 1 s; the next wait (2 s) would end past the window.
    assert len(mocked.calls) == 2
    assert 1 <= time.monotonic() - started < 1.5
    assert rows() == [("ada@example.com", Outcome.FAILED)] * 2


def test_a_retry_after_beyond_the_window_is_not_waited_for(
    client: Client, queued: list[Any], settings: Any, mocked: responses.RequestsMock
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "QUEUED_RETRY_WINDOW": 2}
    client.post(RESEND, {"email": "ada@example.com"})
    mocked.post(ENDPOINT, status=503, headers={"Retry-After": "5"}, json={"message": "down"})

    assert run_queued(queued) == [Outcome.FAILED]
    assert len(mocked.calls) == 1


# RESPONSE_FLOOR --------------------------------------------------------------------


def test_the_floor_pads_sent_and_unknown_answers_alike(
    client: Client, settings: Any, mocked: responses.RequestsMock
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "RESPONSE_FLOOR": 0.3}
    expect_resends(mocked, sent="ada@example.com", unknown="ghost@example.com")

    for address in ("ada@example.com", "ghost@example.com"):
        started = time.monotonic()
        assert client.post(RESEND, {"email": address}).status_code == 302
        assert time.monotonic() - started >= 0.3


def test_the_floor_does_not_delay_errors_or_queued_answers(
    client: Client, settings: Any, queued: list[Any], mocked: responses.RequestsMock
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "RESPONSE_FLOOR": 5.0}
    started = time.monotonic()
    assert client.post(RESEND, {"email": "ada@example.com"}).status_code == 302  # queued
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "DELIVERY": "inline"}
    mocked.post(ENDPOINT, status=500, json={"message": "boom"})
    assert client.post(RESEND, {"email": "ada@example.com"}).status_code == 503
    assert time.monotonic() - started < 2


# The confirmation ------------------------------------------------------------------


def test_the_confirmation_shows_the_typed_address_escaped(
    client: Client, queued: list[Any]
) -> None:
    page = client.post(RESEND, {"email": "o'brien&co@example.com"}, follow=True)

    html = page.content.decode()
    assert "If an account exists for o&#x27;brien&amp;co@example.com, a new reset" in html
    assert "Not your address? Enter the right one below." in html
    assert 'name="email"' in html  # the form to enter it again is on the same page


# Check W007 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "delivery_mode", "warned"),
    [
        pytest.param(IMMEDIATE, "queued", True, id="queued-on-the-immediate-backend"),
        pytest.param(DUMMY, "queued", False, id="queued-on-a-worker-backend"),
        pytest.param(IMMEDIATE, "inline", False, id="inline"),
    ],
)
def test_w006_queued_delivery_without_a_worker(
    settings: Any, backend: str, delivery_mode: str, warned: bool
) -> None:
    settings.TASKS = {"default": {"BACKEND": backend}}
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "DELIVERY": delivery_mode}

    ids = [m.id for m in run_checks() if m.id and m.id.startswith("betatel_reset.")]

    assert ids == (["betatel_reset.W007"] if warned else [])


# Queued resends no worker sent -----------------------------------------------------


def test_the_admin_shows_queued_resends_no_worker_has_sent(admin_client: Client) -> None:
    from datetime import timedelta

    from django.utils import timezone

    old = timezone.now() - timedelta(minutes=6)
    ResendAttempt.objects.create(email="old@example.com", source="web", outcome="queued")
    ResendAttempt.objects.filter(email="old@example.com").update(created_at=old)
    ResendAttempt.objects.create(email="new@example.com", source="web", outcome="queued")
    ResendAttempt.objects.create(email="sent@example.com", source="web", outcome="sent")
    ResendAttempt.objects.filter(email="sent@example.com").update(created_at=old)
    changelist = reverse("admin:betatel_reset_resendattempt_changelist")

    page = admin_client.get(changelist).content.decode()
    stale = admin_client.get(changelist + "?queued=stale").content.decode()

    assert "1 queued resend is still not sent after 5 minutes" in page
    assert "old@example.com" in stale
    assert "new@example.com" not in stale
    assert "sent@example.com" not in stale


def test_no_warning_when_every_queued_resend_is_recent(admin_client: Client) -> None:
    ResendAttempt.objects.create(email="new@example.com", source="web", outcome="queued")

    page = admin_client.get(reverse("admin:betatel_reset_resendattempt_changelist"))

    assert "still not sent" not in page.content.decode()


def test_retrying_failures_leaves_out_queued_attempts(admin_client: Client, settings: Any) -> None:
    """A queued attempt is on its way, or its worker died perhaps mid-send:
    "Retry selected failed attempts" resends neither it nor a failure before it."""
    from betatel_reset.backends import locmem

    from .test_admin import attempt, retry

    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "BACKEND": "locmem"}
    failed = attempt("ada@example.com", Outcome.FAILED, minutes_ago=5)
    queued_row = attempt("bob@example.com", Outcome.QUEUED, minutes_ago=10)
    failed_then_queued = attempt("carol@example.com", Outcome.FAILED, minutes_ago=10)
    attempt("carol@example.com", Outcome.QUEUED, minutes_ago=2)

    retry(admin_client, "retry_failed_attempts", failed, queued_row, failed_then_queued)

    assert [r.email for r in locmem.outbox] == ["ada@example.com"]
