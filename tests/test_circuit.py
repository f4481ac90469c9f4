"""The circuit breaker in front of Betatel."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests
import responses

from betatel_reset import circuit
from betatel_reset.exceptions import AddressRejected, CircuitOpen, UpstreamUnavailable
from betatel_reset.services import resend_reset_email

from .conftest import ENDPOINT
from .test_ratelimit import Clock

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(circuit.time, "time", clock)
    return clock


@pytest.fixture(autouse=True)
def breaker(settings: Any) -> None:
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "CIRCUIT_FAILURE_THRESHOLD": 3,
        "CIRCUIT_COOLDOWN": 30,
        "MAX_RETRIES": 0,
    }


def fail_times(mocked: responses.RequestsMock, n: int) -> None:
    for _ in range(n):
        with pytest.raises(UpstreamUnavailable):
            resend_reset_email("ada@example.com")


def test_opens_after_n_consecutive_failures(
    mocked: responses.RequestsMock, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(ENDPOINT, status=502)
    caplog.set_level(logging.WARNING, logger="betatel_reset.circuit")
    fail_times(mocked, 2)
    assert not circuit.is_open()
    fail_times(mocked, 1)
    assert circuit.is_open()
    assert any("circuit opened" in r.getMessage() for r in caplog.records)


def test_answers_without_calling_upstream_while_open(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    mocked.post(ENDPOINT, body=requests.ReadTimeout("slow"))
    fail_times(mocked, 3)
    calls = len(mocked.calls)
    clock.now += 10
    with pytest.raises(CircuitOpen) as info:
        resend_reset_email("ada@example.com")
    assert info.value.retry_after == 20
    assert len(mocked.calls) == calls


def test_success_resets_the_count(mocked: responses.RequestsMock, clock: Clock) -> None:
    mocked.post(ENDPOINT, status=503)
    fail_times(mocked, 2)
    mocked.replace(responses.POST, ENDPOINT, json={"message": "ok"})
    resend_reset_email("ada@example.com")
    mocked.replace(responses.POST, ENDPOINT, status=503)
    fail_times(mocked, 2)
    assert not circuit.is_open()


def test_rejections_mean_betatel_is_up(mocked: responses.RequestsMock, clock: Clock) -> None:
    mocked.post(ENDPOINT, status=503)
    fail_times(mocked, 2)
    mocked.replace(responses.POST, ENDPOINT, status=404, json={"message": "User not found"})
    with pytest.raises(AddressRejected):
        resend_reset_email("ada@example.com")
    mocked.replace(responses.POST, ENDPOINT, status=503)
    fail_times(mocked, 2)
    assert not circuit.is_open()


def test_successful_probe_closes_it(
    mocked: responses.RequestsMock, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(ENDPOINT, status=500)
    fail_times(mocked, 3)
    clock.now += 31
    mocked.replace(responses.POST, ENDPOINT, json={"message": "ok"})
    caplog.set_level(logging.WARNING, logger="betatel_reset.circuit")
    resend_reset_email("ada@example.com")
    assert not circuit.is_open()
    assert any("circuit closed" in r.getMessage() for r in caplog.records)
    resend_reset_email("ada@example.com")


def test_failed_probe_opens_it_again(mocked: responses.RequestsMock, clock: Clock) -> None:
    mocked.post(ENDPOINT, status=500)
    fail_times(mocked, 3)
    clock.now += 31
    calls = len(mocked.calls)
    fail_times(mocked, 1)  # the probe
    assert len(mocked.calls) == calls + 1
    assert circuit.is_open()
    with pytest.raises(CircuitOpen):
        resend_reset_email("ada@example.com")


def test_only_one_probe_at_a_time(mocked: responses.RequestsMock, clock: Clock) -> None:
    mocked.post(ENDPOINT, status=500)
    fail_times(mocked, 3)
    clock.now += 31
    circuit.before_call()  # this caller holds the probe
    with pytest.raises(CircuitOpen):
        circuit.before_call()
