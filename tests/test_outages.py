"""Outages of what the app leans on: the cache that counts limits (a real Redis
client aimed at a port where nothing listens), and Betatel itself. No page
answers 500, nothing is sent unless it may be, and an outage does not mail the
site's admins once per request."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
import requests
import responses
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils.log import AdminEmailHandler

from betatel_reset import cache as app_cache
from betatel_reset.backends import locmem
from betatel_reset.choices import Outcome, Source
from betatel_reset.exceptions import LimitsUnavailable
from betatel_reset.models import ResendAttempt
from betatel_reset.services import resend_reset_email
from betatel_reset.testing import unused_port_url

from .conftest import ENDPOINT

pytest.importorskip("redis")
pytestmark = pytest.mark.django_db

RESEND = reverse("betatel_reset:resend")
EXPIRED = reverse("betatel_reset:expired")
UNAVAILABLE = "We couldn&#x27;t send the email right now."


@pytest.fixture
def cache_down(settings: Any, locmem_backend: None) -> None:
    """The limits' cache is a Redis nobody answers on (connection refused)."""
    down = unused_port_url("redis").replace("redis://", "")
    settings.CACHES = {
        **settings.CACHES,
        "down": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://{down}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        },
    }
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "CACHE_ALIAS": "down"}
    app_cache._last_warning = 0.0


@pytest.fixture
def admins_mailed(settings: Any) -> Iterator[list[Any]]:
    """A stock production setup: ADMINS mailed for django.request errors (the
    test runner already sends mail to the in-memory outbox)."""
    settings.ADMINS = [("Ops", "ops@example.com")]
    handler = AdminEmailHandler()
    handler.setLevel(logging.ERROR)
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield mail.outbox
    logger.removeHandler(handler)


def clear_limits_from_the_admin(admin_client: Client) -> str:
    """Run "Clear resend rate limits" on one user; the message it leaves."""
    user = get_user_model().objects.create_user("ada", "ada@example.com")
    response = admin_client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "clear_rate_limits_action", "_selected_action": [user.pk]},
        follow=True,
    )
    assert response.status_code == 200
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    return message


@pytest.mark.parametrize("url", [RESEND, EXPIRED], ids=["resend", "expired"])
def test_pages_refuse_with_503_while_the_limits_cache_is_down(
    client: Client, cache_down: None, admins_mailed: list[Any], url: str
) -> None:
    response = client.post(url, {"email": "ada@example.com"})
    assert response.status_code == 503
    assert UNAVAILABLE in response.content.decode()
    assert 'value="ada@example.com"' in response.content.decode()  # nothing lost
    assert locmem.outbox == []
    assert ResendAttempt.objects.get().outcome == Outcome.CACHE_UNAVAILABLE
    assert admins_mailed == []


def test_the_service_raises_a_typed_error(cache_down: None, rf: Any) -> None:
    with pytest.raises(LimitsUnavailable):
        resend_reset_email("ada@example.com", request=rf.post(RESEND))
    assert locmem.outbox == []


def test_a_site_may_fail_open(client: Client, cache_down: None, settings: Any) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "CACHE_FAILURE": "open"}
    response = client.post(RESEND, {"email": "ada@example.com"})
    assert response.status_code == 302
    assert [r.email for r in locmem.outbox] == ["ada@example.com"]


def test_the_outage_is_logged_at_warning_once_a_minute(
    client: Client, cache_down: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="betatel_reset.cache")
    for _ in range(3):
        client.post(RESEND, {"email": "ada@example.com"})
    outage = [r for r in caplog.records if r.name == "betatel_reset.cache"]
    assert [r.levelname for r in outage] == ["WARNING", "INFO", "INFO"]
    assert "'down' cache is unavailable for rate limits (ConnectionError" in outage[0].message


def test_admins_and_the_command_still_send(cache_down: None, admin_client: Client) -> None:
    # Admin and command-line sends skip the public limits, and the circuit
    # breaker lets calls through while it cannot count.
    user = get_user_model().objects.create_user("ada", "ada@example.com")
    send = reverse("admin:betatel_reset_resendattempt_send", args=[user.pk])
    assert admin_client.post(send).status_code == 302
    assert resend_reset_email("grace@example.com", source=Source.API).outcome == Outcome.SENT
    out = StringIO()
    call_command("betatel_resend", "linus@example.com", stdout=out)
    assert "1 sent, 0 failed" in out.getvalue()
    assert [r.email for r in locmem.outbox] == [
        "ada@example.com",
        "grace@example.com",
        "linus@example.com",
    ]


def test_clearing_limits_says_the_cache_is_down(cache_down: None, admin_client: Client) -> None:
    message = clear_limits_from_the_admin(admin_client)
    assert message.startswith("The cache that counts rate limits is unavailable")


def test_betatel_down_answers_503_without_mailing_admins_per_request(
    client: Client,
    settings: Any,
    admins_mailed: list[Any],
    mocked: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mocked.post(ENDPOINT, body=requests.ConnectionError("refused"))
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "CIRCUIT_FAILURE_THRESHOLD": 2}
    statuses = [client.post(RESEND, {"email": f"u{n}@example.com"}).status_code for n in range(4)]
    assert statuses == [503, 503, 503, 503]
    assert admins_mailed == []
    assert not [r for r in caplog.records if r.name == "django.request"]
    # Per request at INFO; the circuit opening once at WARNING.
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("Betatel circuit opened after 2 consecutive failures")


def test_clearing_limits_with_a_bad_rate_says_the_site_is_misconfigured(
    admin_client: Client, settings: Any
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "RATE_LIMIT_EMAIL": "3 per hour"}
    message = clear_limits_from_the_admin(admin_client)
    assert message.startswith("Nothing was cleared: the site is misconfigured.")
