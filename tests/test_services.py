"""The service and the http backend, mocked at the HTTP boundary."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from betatel_reset import __version__
from betatel_reset.addresses import clean_address, mask_email
from betatel_reset.backends import get_backend
from betatel_reset.choices import Outcome, Source
from betatel_reset.exceptions import (
    AddressRejected,
    AuthenticationFailed,
    BetatelResetError,
    ConfigurationError,
    InvalidAddress,
    OutcomeUnknown,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from betatel_reset.models import ResendAttempt
from betatel_reset.services import resend_reset_email

from .conftest import ENDPOINT, TOKEN, expect_resends, make_jwt

SECRET_TOKEN = "fake-secret-token-must-never-leak"

pytestmark = pytest.mark.django_db


@pytest.fixture
def secret_token(settings: Any) -> str:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "TOKEN": SECRET_TOKEN}
    return SECRET_TOKEN


def assert_no_token(error: BaseException, caplog: pytest.LogCaptureFixture, token: str) -> None:
    """Neither the error, its chain, nor any log record holds the token."""
    seen: BaseException | None = error
    while seen is not None:
        assert token not in str(seen)
        assert token not in repr(seen)
        assert token not in repr(vars(seen))
        seen = seen.__cause__ or seen.__context__
    for record in caplog.records:
        assert token not in record.getMessage()
        assert token not in repr(record.args)


def test_request_on_the_wire_matches_the_vendor_example(mocked: responses.RequestsMock) -> None:
    # The vendor's curl: POST, bearer JWT, JSON content type, {"email": ...}.
    mocked.post(
        ENDPOINT,
        json={"message": "Reset password email sent successfully"},
        match=[
            matchers.header_matcher(
                {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
            ),
            matchers.json_params_matcher({"email": "ada.lovelace@example.com"}, strict_match=True),
        ],
    )
    started = time.monotonic()
    result = resend_reset_email("ada.lovelace@example.com")
    elapsed = time.monotonic() - started

    assert len(mocked.calls) == 1
    sent = mocked.calls[0].request
    assert sent.method == "POST"
    assert sent.url == ENDPOINT
    assert sent.headers["User-Agent"].startswith(f"django-betatel-reset/{__version__} ")
    assert json.loads(sent.body) == {"email": "ada.lovelace@example.com"}
    assert result.outcome == Outcome.SENT
    assert result.status_code == 200
    assert result.message == "Reset password email sent successfully"
    assert result.email == "ada.lovelace@example.com"
    assert 0 < result.duration <= elapsed  # seconds, spent in this call


@pytest.mark.parametrize(
    "api_url", ["api.betatel.com", "https://", "https://api betatel.com", "ftp://api.betatel.com"]
)
def test_a_malformed_api_url_is_a_configuration_error(
    mocked: responses.RequestsMock, settings: Any, api_url: str
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "API_URL": api_url}
    with pytest.raises(ConfigurationError, match=r"BETATEL_RESET\['API_URL'\] is not a valid URL"):
        resend_reset_email("ada@example.com")
    assert not mocked.calls


def test_no_token_body_or_cookie_is_left_in_the_shared_session(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(ENDPOINT, json={"message": "ok"}, headers={"Set-Cookie": "tracker=1; Path=/"})
    resend_reset_email("ada@example.com")
    resend_reset_email("grace@example.com")

    session = get_backend("http").session  # type: ignore[attr-defined]
    assert "Authorization" not in session.headers
    assert not session.cookies
    assert "Cookie" not in mocked.calls[1].request.headers
    assert [json.loads(call.request.body)["email"] for call in mocked.calls] == [
        "ada@example.com",
        "grace@example.com",
    ]


def test_address_is_normalised_before_sending(mocked: responses.RequestsMock) -> None:
    mocked.post(ENDPOINT, json={"message": "ok"})
    resend_reset_email("  Ada.Lovelace@EXAMPLE.Com ")
    assert json.loads(mocked.calls[0].request.body) == {"email": "Ada.Lovelace@example.com"}


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "not-an-email",
        "a@b@c.com",
        "ada@example.com\r\nBcc: x@y.z",
        "ad\x00a@x.com",
        "a" * 250 + "@example.com",
    ],
)
def test_invalid_addresses_never_reach_upstream(
    mocked: responses.RequestsMock, value: str
) -> None:
    with pytest.raises(InvalidAddress):
        resend_reset_email(value)
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(
    ("status", "body", "error_class", "outcome"),
    [
        (401, {"message": "Unauthorized"}, AuthenticationFailed, Outcome.AUTH_FAILED),
        (403, {"message": "Forbidden"}, AuthenticationFailed, Outcome.AUTH_FAILED),
        (400, {"message": "Email is required"}, AddressRejected, Outcome.UNKNOWN_ACCOUNT),
        (404, {"message": "User not found"}, AddressRejected, Outcome.UNKNOWN_ACCOUNT),
        (422, {"message": "Unprocessable"}, AddressRejected, Outcome.UNKNOWN_ACCOUNT),
        (429, {"message": "Too many"}, UpstreamRateLimited, Outcome.UPSTREAM_RATE_LIMITED),
        (500, {"message": "boom"}, UpstreamUnavailable, Outcome.FAILED),
        (502, None, UpstreamUnavailable, Outcome.FAILED),
        (503, None, UpstreamUnavailable, Outcome.FAILED),
        (504, None, UpstreamUnavailable, Outcome.FAILED),
    ],
)
def test_each_upstream_status_raises_its_typed_error(
    mocked: responses.RequestsMock,
    secret_token: str,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: dict[str, str] | None,
    error_class: type[BetatelResetError],
    outcome: Outcome,
) -> None:
    if body is None:
        mocked.post(ENDPOINT, status=status, body="<html>Bad gateway</html>")
    else:
        mocked.post(ENDPOINT, status=status, json=body)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(error_class) as info:
        resend_reset_email("ada@example.com")

    assert type(info.value) is error_class
    assert info.value.status_code == status
    assert info.value.outcome == outcome
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    if body is not None:
        assert info.value.upstream_message == body["message"]
    assert_no_token(info.value, caplog, secret_token)


def test_429_carries_retry_after(mocked: responses.RequestsMock) -> None:
    mocked.post(
        ENDPOINT, status=429, json={"message": "slow down"}, headers={"Retry-After": "120"}
    )
    with pytest.raises(UpstreamRateLimited) as info:
        resend_reset_email("ada@example.com")
    assert info.value.retry_after == 120
    assert len(mocked.calls) == 1  # 120 s is beyond RETRY_MAX_WAIT: no retry


@pytest.mark.parametrize(
    ("exception", "description", "outcome"),
    [
        (
            requests.ConnectTimeout("connect timeout"),
            "connecting to Betatel timed out",
            Outcome.FAILED,
        ),
        # Betatel may have the request: the email may have gone out.
        (
            requests.ReadTimeout("read timeout"),
            "Betatel did not answer in time",
            Outcome.UNCERTAIN,
        ),
        (
            requests.ConnectionError("reset by peer"),
            "the connection to Betatel failed",
            Outcome.UNCERTAIN,
        ),
        (requests.exceptions.SSLError("bad cert"), "TLS handshake", Outcome.FAILED),
    ],
)
def test_network_failures_raise_unavailable_without_the_token(
    mocked: responses.RequestsMock,
    secret_token: str,
    caplog: pytest.LogCaptureFixture,
    exception: Exception,
    description: str,
    outcome: Outcome,
) -> None:
    # requests' exceptions hold the prepared request, headers and all.
    mocked.post(ENDPOINT, body=exception)
    with pytest.raises(UpstreamUnavailable) as info:
        resend_reset_email("ada@example.com")
    assert description in str(info.value)
    assert info.value.outcome == outcome
    assert isinstance(info.value, OutcomeUnknown) == (outcome == Outcome.UNCERTAIN)
    assert info.value.status_code is None
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert_no_token(info.value, caplog, secret_token)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html", "<html><body>Maintenance</body></html>"),
        ("application/json", "{not json"),
        ("application/json", '["a", "list"]'),
    ],
)
def test_unexpected_success_answers_are_unavailable(
    mocked: responses.RequestsMock, content_type: str, body: str
) -> None:
    mocked.post(ENDPOINT, status=200, body=body, content_type=content_type)
    with pytest.raises(UpstreamUnavailable, match="not the expected JSON") as info:
        resend_reset_email("ada@example.com")
    assert info.value.status_code == 200


def test_redirects_are_not_followed(mocked: responses.RequestsMock) -> None:
    mocked.post(ENDPOINT, status=302, headers={"Location": "https://elsewhere.test/steal"})
    with pytest.raises(UpstreamUnavailable, match="redirect"):
        resend_reset_email("ada@example.com")
    assert [call.request.url for call in mocked.calls] == [ENDPOINT]


def test_response_body_is_capped(mocked: responses.RequestsMock, settings: Any) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "MAX_RESPONSE_BYTES": 1024}
    mocked.post(ENDPOINT, status=200, body=json.dumps({"message": "x" * 5000}))
    with pytest.raises(UpstreamUnavailable, match="too large"):
        resend_reset_email("ada@example.com")


def test_upstream_message_is_cleaned_and_shortened(mocked: responses.RequestsMock) -> None:
    mocked.post(ENDPOINT, status=404, json={"message": "User\r\nnot\x00found " + "y" * 500})
    with pytest.raises(AddressRejected) as info:
        resend_reset_email("ada@example.com")
    assert info.value.upstream_message.startswith("User not found yyy")
    assert "\n" not in info.value.upstream_message
    assert len(info.value.upstream_message) == 200


class TestRetries:
    def test_connection_never_made_is_retried(self, mocked: responses.RequestsMock) -> None:
        from urllib3.exceptions import MaxRetryError, NewConnectionError

        refused = requests.ConnectionError(
            MaxRetryError(None, ENDPOINT, NewConnectionError(None, "refused"))  # type: ignore[arg-type]
        )
        mocked.post(ENDPOINT, body=refused)
        mocked.post(ENDPOINT, json={"message": "ok"})
        assert resend_reset_email("ada@example.com").outcome == Outcome.SENT
        assert len(mocked.calls) == 2

    def test_connect_timeout_is_retried(self, mocked: responses.RequestsMock) -> None:
        mocked.post(ENDPOINT, body=requests.ConnectTimeout("connect timeout"))
        mocked.post(ENDPOINT, json={"message": "ok"})
        assert resend_reset_email("ada@example.com").outcome == Outcome.SENT

    @pytest.mark.parametrize(
        "exception",
        [requests.ReadTimeout("read timeout"), requests.ConnectionError("reset by peer")],
    )
    def test_failures_after_sending_are_not_retried(
        self, mocked: responses.RequestsMock, exception: Exception
    ) -> None:
        # The request may have reached Betatel: a retry could send a second email.
        mocked.post(ENDPOINT, body=exception)
        mocked.post(ENDPOINT, json={"message": "ok"})
        with pytest.raises(UpstreamUnavailable):
            resend_reset_email("ada@example.com")
        assert len(mocked.calls) == 1

    @pytest.mark.parametrize("status", [503, 429])
    def test_short_retry_after_is_honoured(
        self, mocked: responses.RequestsMock, status: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        slept: list[float] = []
        monkeypatch.setattr(time, "sleep", slept.append)
        mocked.post(
            ENDPOINT, status=status, json={"message": "wait"}, headers={"Retry-After": "1"}
        )
        mocked.post(ENDPOINT, json={"message": "ok"})
        assert resend_reset_email("ada@example.com").outcome == Outcome.SENT
        assert slept == [1.0]

    def test_500_is_not_retried(self, mocked: responses.RequestsMock) -> None:
        mocked.post(ENDPOINT, status=500, json={"message": "x"}, headers={"Retry-After": "1"})
        with pytest.raises(UpstreamUnavailable):
            resend_reset_email("ada@example.com")
        assert len(mocked.calls) == 1

    def test_retries_are_bounded(
        self, mocked: responses.RequestsMock, settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(time, "sleep", lambda seconds: None)
        settings.BETATEL_RESET = {**settings.BETATEL_RESET, "MAX_RETRIES": 2}
        mocked.post(ENDPOINT, status=503, json={"message": "x"}, headers={"Retry-After": "1"})
        with pytest.raises(UpstreamUnavailable):
            resend_reset_email("ada@example.com")
        assert len(mocked.calls) == 3

    def test_retries_stay_within_the_deadline(
        self, mocked: responses.RequestsMock, settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(time, "sleep", lambda seconds: None)
        settings.BETATEL_RESET = {**settings.BETATEL_RESET, "DEADLINE": 2.0, "RETRY_MAX_WAIT": 5}
        mocked.post(ENDPOINT, status=503, json={"message": "x"}, headers={"Retry-After": "3"})
        with pytest.raises(UpstreamUnavailable):
            resend_reset_email("ada@example.com")
        assert len(mocked.calls) == 1


class TestTokens:
    def test_missing_token_is_a_configuration_error(
        self, mocked: responses.RequestsMock, settings: Any
    ) -> None:
        settings.BETATEL_RESET = {**settings.BETATEL_RESET, "TOKEN": None}
        with pytest.raises(ConfigurationError, match=r"BETATEL_RESET\['TOKEN'\]"):
            resend_reset_email("ada@example.com")
        assert not issubclass(ConfigurationError, BetatelResetError)
        assert len(mocked.calls) == 0

    def test_provider_gets_the_request_and_its_token_is_sent(
        self, mocked: responses.RequestsMock, settings: Any, rf: Any
    ) -> None:
        seen: list[Any] = []

        def provider(request: Any, *, refresh: bool = False) -> str:
            seen.append(request)
            return f"per-user-{request.session_token}"

        request = rf.post("/")
        request.session_token = "u42"
        settings.BETATEL_RESET = {
            **settings.BETATEL_RESET,
            "TOKEN": None,
            "TOKEN_PROVIDER": provider,
        }
        mocked.post(
            ENDPOINT,
            json={"message": "ok"},
            match=[matchers.header_matcher({"Authorization": "Bearer per-user-u42"})],
        )
        resend_reset_email("ada@example.com", request=request)
        assert seen == [request]

    def test_provider_by_dotted_path(self, mocked: responses.RequestsMock, settings: Any) -> None:
        settings.BETATEL_RESET = {
            **settings.BETATEL_RESET,
            "TOKEN_PROVIDER": "tests.support.token_providers.static_provider",
        }
        mocked.post(
            ENDPOINT,
            json={"message": "ok"},
            match=[matchers.header_matcher({"Authorization": "Bearer from-dotted-provider"})],
        )
        resend_reset_email("ada@example.com")

    def test_401_refreshes_the_token_once_and_retries(
        self, mocked: responses.RequestsMock, settings: Any
    ) -> None:
        calls: list[bool] = []

        def provider(request: Any, *, refresh: bool = False) -> str:
            calls.append(refresh)
            return "fresh-token" if refresh else "stale-token"

        settings.BETATEL_RESET = {**settings.BETATEL_RESET, "TOKEN_PROVIDER": provider}
        mocked.post(
            ENDPOINT,
            status=401,
            json={"message": "jwt expired"},
            match=[matchers.header_matcher({"Authorization": "Bearer stale-token"})],
        )
        mocked.post(
            ENDPOINT,
            json={"message": "ok"},
            match=[matchers.header_matcher({"Authorization": "Bearer fresh-token"})],
        )
        assert resend_reset_email("ada@example.com").outcome == Outcome.SENT
        assert calls == [False, True]

    def test_a_second_401_is_not_retried_again(
        self, mocked: responses.RequestsMock, settings: Any
    ) -> None:
        tokens = iter(["t1", "t2", "t3"])
        settings.BETATEL_RESET = {
            **settings.BETATEL_RESET,
            "TOKEN_PROVIDER": lambda request, refresh=False: next(tokens),
        }
        mocked.post(ENDPOINT, status=401, json={"message": "no"})
        with pytest.raises(AuthenticationFailed):
            resend_reset_email("ada@example.com")
        assert len(mocked.calls) == 2

    def test_provider_without_refresh_argument_is_called_again(
        self, mocked: responses.RequestsMock, settings: Any
    ) -> None:
        tokens = iter(["old", "new"])
        settings.BETATEL_RESET = {
            **settings.BETATEL_RESET,
            "TOKEN_PROVIDER": lambda request: next(tokens),
        }
        mocked.post(ENDPOINT, status=401, json={"message": "no"})
        mocked.post(ENDPOINT, json={"message": "ok"})
        assert resend_reset_email("ada@example.com").outcome == Outcome.SENT

    def test_static_token_401_is_not_retried_and_explains_expiry(
        self, mocked: responses.RequestsMock, settings: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        expired = make_jwt(id="fake", exp=1_743_427_803)  # the vendor example's exp
        settings.BETATEL_RESET = {**settings.BETATEL_RESET, "TOKEN": expired}
        mocked.post(ENDPOINT, status=401, json={"message": "jwt expired"})
        with pytest.raises(
            AuthenticationFailed, match="expired at 2025-03-31 13:30:03 UTC"
        ) as info:
            resend_reset_email("ada@example.com")
        assert len(mocked.calls) == 1
        assert_no_token(info.value, caplog, expired)


def test_service_logs_outcome_with_masked_address(
    mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(ENDPOINT, json={"message": "ok"})
    caplog.set_level(logging.INFO, logger="betatel_reset")
    resend_reset_email("ada.lovelace@example.com", source=Source.COMMAND)
    messages = [r.getMessage() for r in caplog.records if r.name == "betatel_reset.services"]
    assert len(messages) == 1
    assert "a***@example.com" in messages[0]
    assert "ada.lovelace" not in messages[0]
    assert "sent" in messages[0]
    assert "command" in messages[0]


def test_mask_email() -> None:
    assert mask_email("ada@example.com") == "a***@example.com"
    assert mask_email("nonsense") == "***"


def test_clean_address_keeps_local_part_case() -> None:
    assert clean_address(" Ada@Example.COM") == "Ada@example.com"


def test_raised_errors_carry_no_frame_holding_the_token(
    mocked: responses.RequestsMock, secret_token: str
) -> None:
    # Error trackers capture the local variables of a traceback's frames.
    mocked.post(ENDPOINT, status=401, json={"message": "Unauthorized"})
    with pytest.raises(AuthenticationFailed) as info:
        resend_reset_email("ada@example.com")
    tb = info.value.__traceback__
    assert tb is not None
    tb = tb.tb_next  # past this test's own frame
    frames = 0
    while tb is not None:
        frames += 1
        for value in tb.tb_frame.f_locals.values():
            assert secret_token not in repr(value)
        tb = tb.tb_next
    assert frames >= 1


@pytest.fixture
def raising_receivers() -> Any:
    """A site's receivers on every signal, each of which raises."""
    from betatel_reset.signals import resend_failed, resend_requested, resend_sent

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("a site's receiver is broken")

    signals = (resend_requested, resend_sent, resend_failed)
    for signal in signals:
        signal.connect(broken, dispatch_uid="test-broken")
    yield
    for signal in signals:
        signal.disconnect(dispatch_uid="test-broken")


@pytest.mark.django_db
def test_a_raising_receiver_changes_no_outcome(
    mocked: responses.RequestsMock,
    raising_receivers: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    expect_resends(mocked, sent="ada@example.com", unknown="ghost@example.com")
    assert resend_reset_email("ada@example.com").outcome == Outcome.SENT
    with pytest.raises(AddressRejected):
        resend_reset_email("ghost@example.com")
    assert len(mocked.calls) == 2  # each sent once, never again
    assert list(ResendAttempt.objects.values_list("outcome", flat=True).order_by("id")) == [
        Outcome.SENT,
        Outcome.UNKNOWN_ACCOUNT,
    ]
    # Logged with its traceback, once per signal sent: requested and sent,
    # then requested and failed.
    raised = [r for r in caplog.records if r.name == "django.dispatch"]
    assert len(raised) == 4
    assert all(r.levelno == logging.ERROR for r in raised)
    assert all(r.exc_info and r.exc_info[0] is RuntimeError for r in raised)
