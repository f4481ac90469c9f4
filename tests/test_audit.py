"""The audit trail, the signals and the prune command."""

from __future__ import annotations

import datetime
import json
import time
from io import StringIO
from typing import Any

import pytest
import requests
import responses
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.db.utils import ConnectionDoesNotExist
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from betatel_reset import signals
from betatel_reset.choices import Outcome, Source
from betatel_reset.exceptions import BetatelResetError, ConfigurationError, InvalidAddress
from betatel_reset.models import ASYNC_COMMIT, ResendAttempt
from betatel_reset.services import resend_reset_email

from .conftest import ENDPOINT

pytestmark = pytest.mark.django_db

SECRET = "fake-audit-token-never-stored"


@pytest.fixture(autouse=True)
def token(settings: Any) -> None:
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "TOKEN": SECRET,
        "MAX_RETRIES": 0,
        "CIRCUIT_FAILURE_THRESHOLD": 100,
    }


def only_row() -> ResendAttempt:
    rows = list(ResendAttempt.objects.all())
    assert len(rows) == 1
    assert SECRET not in repr(vars(rows[0]))
    return rows[0]


def test_sent(mocked: responses.RequestsMock) -> None:
    def answer_after_50_ms(request: Any) -> tuple[int, dict[str, str], str]:
        time.sleep(0.05)
        return 200, {}, json.dumps({"message": "Reset password email sent successfully"})

    mocked.add_callback(
        responses.POST, ENDPOINT, callback=answer_after_50_ms, content_type="application/json"
    )
    started = time.monotonic()
    result = resend_reset_email("Ada@Example.com", source=Source.COMMAND)
    elapsed = time.monotonic() - started
    row = only_row()
    assert row.email == "Ada@example.com"
    assert row.outcome == Outcome.SENT
    assert row.source == Source.COMMAND
    assert row.status_code == 200
    # The whole send in milliseconds, Betatel's 50 ms included: what the caller was told.
    assert row.duration_ms == round(result.duration * 1000)
    assert 50 <= row.duration_ms <= round(elapsed * 1000)
    assert row.actor is None
    assert row.created_at <= timezone.now()


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (404, Outcome.UNKNOWN_ACCOUNT),
        (401, Outcome.AUTH_FAILED),
        (429, Outcome.UPSTREAM_RATE_LIMITED),
        (500, Outcome.FAILED),
    ],
)
def test_upstream_failures(mocked: responses.RequestsMock, status: int, outcome: Outcome) -> None:
    mocked.post(ENDPOINT, status=status, json={"message": "upstream says no"})
    with pytest.raises(BetatelResetError):
        resend_reset_email("ada@example.com")
    row = only_row()
    assert row.outcome == outcome
    assert row.status_code == status
    assert "upstream says no" in row.detail


def test_timeout(mocked: responses.RequestsMock) -> None:
    mocked.post(ENDPOINT, body=requests.ReadTimeout("slow"))
    with pytest.raises(BetatelResetError):
        resend_reset_email("ada@example.com")
    row = only_row()
    assert row.outcome == Outcome.UNCERTAIN  # Betatel had the request: it may have sent
    assert row.status_code is None
    assert "did not answer in time" in row.detail


def test_rate_limited_locally(settings: Any, locmem_backend: None) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "RATE_LIMIT_EMAIL": "0/h"}
    with pytest.raises(BetatelResetError):
        resend_reset_email("ada@example.com", request=RequestFactory().post("/"))
    assert only_row().outcome == Outcome.RATE_LIMITED


def test_circuit_open(mocked: responses.RequestsMock, settings: Any) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "CIRCUIT_FAILURE_THRESHOLD": 1}
    mocked.post(ENDPOINT, status=503)
    for _ in range(2):
        with pytest.raises(BetatelResetError):
            resend_reset_email("ada@example.com")
    outcomes = list(ResendAttempt.objects.order_by("id").values_list("outcome", flat=True))
    assert outcomes == [Outcome.FAILED, Outcome.CIRCUIT_OPEN]
    assert len(mocked.calls) == 1


def test_misconfigured(settings: Any) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "TOKEN": None}
    with pytest.raises(ConfigurationError):
        resend_reset_email("ada@example.com")
    assert only_row().outcome == Outcome.MISCONFIGURED


def test_invalid_addresses_are_not_attempts(locmem_backend: None) -> None:
    with pytest.raises(InvalidAddress):
        resend_reset_email("not an address")
    assert not ResendAttempt.objects.exists()


def test_actor_from_the_request(locmem_backend: None) -> None:
    admin = get_user_model().objects.create_user("boss", "boss@example.com", "x", is_staff=True)
    request = RequestFactory().post("/")
    request.user = admin
    resend_reset_email("ada@example.com", request=request, source=Source.ADMIN)
    row = only_row()
    assert row.actor == admin
    assert row.source == Source.ADMIN


def test_record_writes_one_row_with_the_fields_defaults() -> None:
    before = timezone.now()
    ResendAttempt.objects.record(email="ada@example.com", source=Source.WEB, outcome=Outcome.SENT)
    row = only_row()
    assert (row.email, row.source, row.outcome) == ("ada@example.com", "web", "sent")
    assert before <= row.created_at <= timezone.now()
    assert (row.status_code, row.duration_ms, row.detail, row.actor_id) == (None, 0, "", None)


def test_record_takes_the_actor_by_id() -> None:
    admin = get_user_model().objects.create_user("boss", "boss@example.com", "x", is_staff=True)
    ResendAttempt.objects.record(
        email="ada@example.com", source=Source.ADMIN, outcome=Outcome.SENT, actor_id=admin.pk
    )
    assert only_row().actor == admin


def test_record_writes_to_the_database_it_is_given() -> None:
    with pytest.raises(ConnectionDoesNotExist):
        ResendAttempt.objects.db_manager("elsewhere").record(email="ada@example.com")


@pytest.mark.parametrize("returns_columns", [True, False], ids=["RETURNING", "last id"])
def test_record_returns_the_new_rows_id_when_asked(
    returns_columns: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection.features, "can_return_columns_from_insert", returns_columns)
    first = ResendAttempt.objects.record(email="ada@example.com", outcome=Outcome.QUEUED)
    second = ResendAttempt.objects.record(
        returning=True, email="bob@example.com", outcome=Outcome.QUEUED
    )
    assert first is None
    assert second == ResendAttempt.objects.get(email="bob@example.com").pk


def test_record_refuses_unknown_fields() -> None:
    with pytest.raises(TypeError, match="actor, ip"):
        ResendAttempt.objects.record(email="ada@example.com", actor=None, ip="192.0.2.1")
    assert not ResendAttempt.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_async_commit_is_for_postgresql_only(locmem_backend: None) -> None:
    with CaptureQueriesContext(connection) as queries:
        resend_reset_email("ada@example.com")
    [insert] = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
    assert not insert.startswith(ASYNC_COMMIT)
    assert ResendAttempt.objects.get().email == "ada@example.com"


def test_a_failed_audit_write_is_logged_and_the_send_stands(
    locmem_backend: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**values: Any) -> None:
        raise DatabaseError("disk full")

    monkeypatch.setattr(ResendAttempt.objects, "record", broken)
    result = resend_reset_email("ada@example.com")
    assert result.outcome == Outcome.SENT
    assert "Could not record the resend attempt for a***@example.com" in caplog.text


def test_signals(mocked: responses.RequestsMock) -> None:
    received: list[tuple[str, dict[str, Any]]] = []

    def receiver(name: str) -> Any:
        def handler(sender: Any, **kwargs: Any) -> None:
            received.append((name, {"sender": sender, **kwargs}))

        return handler

    handlers = {name: receiver(name) for name in ("requested", "sent", "failed")}
    signals.resend_requested.connect(handlers["requested"])
    signals.resend_sent.connect(handlers["sent"])
    signals.resend_failed.connect(handlers["failed"], sender=Source.COMMAND)
    try:
        mocked.post(ENDPOINT, json={"message": "ok"})
        resend_reset_email("ada@example.com", source=Source.COMMAND)
        mocked.replace(responses.POST, ENDPOINT, status=404, json={"message": "nope"})
        with pytest.raises(BetatelResetError):
            resend_reset_email("ghost@example.com", source=Source.COMMAND)
        with pytest.raises(BetatelResetError):
            resend_reset_email("ghost@example.com", source=Source.API)  # not connected
    finally:
        signals.resend_requested.disconnect(handlers["requested"])
        signals.resend_sent.disconnect(handlers["sent"])
        signals.resend_failed.disconnect(handlers["failed"], sender=Source.COMMAND)

    names = [name for name, _ in received]
    assert names == ["requested", "sent", "requested", "failed", "requested"]
    sent = received[1][1]
    assert sent["sender"] == Source.COMMAND
    assert sent["email"] == "ada@example.com"
    assert sent["result"].outcome == Outcome.SENT
    failed = received[3][1]
    assert failed["outcome"] == Outcome.UNKNOWN_ACCOUNT
    assert failed["source"] == Source.COMMAND
    for _, kwargs in received:
        assert SECRET not in repr(kwargs)


class TestPrune:
    def make(self, days_ago: int) -> ResendAttempt:
        return ResendAttempt.objects.create(
            email="ada@example.com",
            source=Source.WEB,
            outcome=Outcome.SENT,
            created_at=timezone.now() - datetime.timedelta(days=days_ago),
        )

    def test_deletes_only_older_rows(self) -> None:
        old, recent = self.make(91), self.make(89)
        out = StringIO()
        call_command("betatel_prune", "--older-than", "90d", stdout=out)
        assert list(ResendAttempt.objects.all()) == [recent]
        assert "Deleted 1 " in out.getvalue()
        assert not ResendAttempt.objects.filter(pk=old.pk).exists()

    def test_default_is_90_days(self) -> None:
        self.make(100)
        self.make(1)
        call_command("betatel_prune", stdout=StringIO())
        assert ResendAttempt.objects.count() == 1

    def test_dry_run(self) -> None:
        self.make(100)
        out = StringIO()
        call_command("betatel_prune", "--older-than", "30d", "--dry-run", stdout=out)
        assert ResendAttempt.objects.count() == 1
        assert "1 attempts older than 30d would be deleted" in out.getvalue()

    def test_bad_period(self) -> None:
        with pytest.raises(CommandError, match="--older-than"):
            call_command("betatel_prune", "--older-than", "ninety days")
