"""One test per system check id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import certifi
import pytest
from django.core.checks import CheckMessage, run_checks

from betatel_reset.backends.console import ConsoleBackend
from betatel_reset.conf import DEFAULTS, app_settings
from betatel_reset.exceptions import ConfigurationError

from .conftest import make_jwt


def ids() -> list[str]:
    return sorted(m.id or "" for m in run_checks() if (m.id or "").startswith("betatel_reset."))


def configure(settings: Any, debug: bool = False, **values: Any) -> None:
    settings.DEBUG = debug
    settings.BETATEL_RESET = values


def test_test_settings_are_clean() -> None:
    assert ids() == []


def deploy_ids() -> list[str]:
    return sorted(
        m.id or ""
        for m in run_checks(include_deployment_checks=True)
        if (m.id or "").startswith("betatel_reset.")
    )


def test_w006_http_backend_without_token_only_warns(settings: Any) -> None:
    """A missing token must not stop migrate, collectstatic or a site's tests."""
    configure(settings, BACKEND="http", API_URL="https://api.betatel.com")
    [message] = [m for m in run_checks() if (m.id or "").startswith("betatel_reset.")]
    assert message.id == "betatel_reset.W006"
    assert not message.is_serious()
    assert "TOKEN_PROVIDER" in (message.hint or "")


def test_e001_http_backend_without_token_under_deploy(settings: Any) -> None:
    configure(settings, BACKEND="http", API_URL="https://api.betatel.com")
    assert deploy_ids() == ["betatel_reset.E001", "betatel_reset.W006"]
    [error] = [
        m for m in run_checks(include_deployment_checks=True) if m.id == "betatel_reset.E001"
    ]
    assert error.is_serious()


def test_e001_w006_not_raised_for_console_backend(settings: Any) -> None:
    configure(settings, BACKEND="console")
    assert deploy_ids() == []


def test_e001_w006_not_raised_with_a_provider(settings: Any) -> None:
    configure(settings, TOKEN_PROVIDER="tests.support.token_providers.static_provider")
    assert deploy_ids() == []


def test_e001_not_raised_with_a_token(settings: Any) -> None:
    configure(settings, TOKEN="x")
    assert deploy_ids() == []


def test_e002_unimportable_backend(settings: Any) -> None:
    configure(settings, BACKEND="nowhere.Backend", TOKEN="x")
    assert ids() == ["betatel_reset.E002"]


def test_e003_unimportable_provider(settings: Any) -> None:
    configure(settings, TOKEN_PROVIDER="tests.support.token_providers.nothing_here")
    assert ids() == ["betatel_reset.E003"]


def test_w001_expired_static_jwt(settings: Any) -> None:
    configure(settings, TOKEN=make_jwt(exp=1_743_427_803))
    assert ids() == ["betatel_reset.W001"]


def test_w001_not_raised_for_a_live_jwt(settings: Any) -> None:
    configure(settings, TOKEN=make_jwt(exp=4_102_444_800))
    assert ids() == []


def test_w002_plain_http_api_url_outside_debug(settings: Any) -> None:
    configure(settings, TOKEN="x", API_URL="http://api.betatel.com")
    assert ids() == ["betatel_reset.W002"]


def test_w002_allowed_in_debug(settings: Any) -> None:
    configure(settings, debug=True, TOKEN="x", API_URL="http://127.0.0.1:9000")
    assert ids() == []


def test_w003_unknown_key(settings: Any) -> None:
    configure(settings, TOKEN="x", TIMEOUT=5)
    assert ids() == ["betatel_reset.W003"]


def test_e004_bad_rate(settings: Any) -> None:
    configure(settings, TOKEN="x", RATE_LIMIT_IP="twenty an hour")
    assert ids() == ["betatel_reset.E004"]


def test_w005_rate_limits_on_a_dummy_cache(settings: Any) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    configure(settings, TOKEN="x")
    assert ids() == ["betatel_reset.W005"]


def test_w005_not_raised_when_limits_are_off(settings: Any) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    configure(settings, TOKEN="x", RATE_LIMIT_IP=None, RATE_LIMIT_EMAIL=None)
    assert ids() == []


def messages() -> list[CheckMessage]:
    return [m for m in run_checks() if (m.id or "").startswith("betatel_reset.")]


E007 = "betatel_reset.E007"

#: One bad value for every setting (MESSAGES has its own check, E006), with
#: the id it is reported under.
BAD_VALUES = [
    # Seconds: a number (not a string) above 0.
    pytest.param("CONNECT_TIMEOUT", "3s", E007, id="CONNECT_TIMEOUT-a-string"),
    pytest.param("READ_TIMEOUT", 0, E007, id="READ_TIMEOUT-zero"),
    pytest.param("DEADLINE", -12.0, E007, id="DEADLINE-negative"),
    pytest.param("DEADLINE", 10**400, E007, id="DEADLINE-beyond-a-float"),
    pytest.param("CIRCUIT_COOLDOWN", float("nan"), E007, id="CIRCUIT_COOLDOWN-nan"),
    pytest.param("BULK_STALE_AFTER", 0, E007, id="BULK_STALE_AFTER-zero"),
    # Waits: a number, 0 or more.
    pytest.param("RETRY_MAX_WAIT", -1, E007, id="RETRY_MAX_WAIT-negative"),
    pytest.param("BULK_MAX_RETRY_WAIT", "60", E007, id="BULK_MAX_RETRY_WAIT-a-string"),
    # Counts: an int, 0 or more.
    pytest.param("MAX_RETRIES", -1, E007, id="MAX_RETRIES-negative"),
    pytest.param("BULK_RETRIES", 1.5, E007, id="BULK_RETRIES-a-float"),
    # Counts: an int above 0.
    pytest.param("MAX_RESPONSE_BYTES", 0, E007, id="MAX_RESPONSE_BYTES-zero"),
    pytest.param("CIRCUIT_FAILURE_THRESHOLD", True, E007, id="CIRCUIT_FAILURE_THRESHOLD-a-bool"),
    pytest.param("INLINE_CONCURRENCY", "8", E007, id="INLINE_CONCURRENCY-a-string"),
    pytest.param("INLINE_MAX_BATCH", None, E007, id="INLINE_MAX_BATCH-none"),
    pytest.param("TASK_CHUNK_SIZE", 0, E007, id="TASK_CHUNK_SIZE-zero"),
    pytest.param("TASK_CONCURRENCY", -4, E007, id="TASK_CONCURRENCY-negative"),
    pytest.param("RESPONSE_FLOOR", "1s", E007, id="RESPONSE_FLOOR-a-string"),
    pytest.param("QUEUED_RETRY_WINDOW", -1, E007, id="QUEUED_RETRY_WINDOW-negative"),
    pytest.param("DELIVERY", "async", E007, id="DELIVERY-unknown"),
    # Flags: True or False.
    pytest.param("PREVENT_ENUMERATION", "false", E007, id="PREVENT_ENUMERATION-a-string"),
    pytest.param("AUDIT_ASYNC_COMMIT", 1, E007, id="AUDIT_ASYNC_COMMIT-an-int"),
    pytest.param("ADMIN_ACTION", "no", E007, id="ADMIN_ACTION-a-string"),
    pytest.param("PAGE_MAIN", "false", E007, id="PAGE_MAIN-a-string"),
    pytest.param("PAGE_MESSAGES", 0, E007, id="PAGE_MESSAGES-an-int"),
    # Rates.
    pytest.param("RATE_LIMIT_EMAIL", 3, "betatel_reset.E004", id="RATE_LIMIT_EMAIL-an-int"),
    pytest.param("RATE_LIMIT_IP", "20/0h", "betatel_reset.E004", id="RATE_LIMIT_IP-no-period"),
    pytest.param("BULK_RATE", "20/0s", E007, id="BULK_RATE-no-period"),
    # Paths, URLs, names.
    pytest.param("PROXIES", "proxy.internal:3128", E007, id="PROXIES-no-scheme"),
    pytest.param("CA_BUNDLE", "/nonexistent/ca.pem", "betatel_reset.E008", id="CA_BUNDLE-missing"),
    pytest.param("API_URL", "https://user:secret@api.betatel.com", E007, id="API_URL-credentials"),
    pytest.param("ENDPOINT_PATH", "/reset password", E007, id="ENDPOINT_PATH-a-space"),
    pytest.param("CLIENT_IP_HEADER", "X-Forwarded-For", E007, id="CLIENT_IP_HEADER-header-name"),
    pytest.param("CACHE_ALIAS", "redis", "betatel_reset.E009", id="CACHE_ALIAS-not-in-CACHES"),
    pytest.param("CACHE_FAILURE", "fail-open", "betatel_reset.E007", id="CACHE_FAILURE-unknown"),
    pytest.param("BACKEND", ["http"], "betatel_reset.E002", id="BACKEND-a-list"),
    pytest.param("TOKEN", 12345, E007, id="TOKEN-an-int"),
    pytest.param("TOKEN_PROVIDER", "not a path", "betatel_reset.E003", id="TOKEN_PROVIDER-spaces"),
    pytest.param("TASK_BACKEND", 5, "betatel_reset.E005", id="TASK_BACKEND-an-int"),
]


def test_every_setting_has_a_bad_value_test() -> None:
    tested = {param.values[0] for param in BAD_VALUES}
    assert tested == set(DEFAULTS) - {"MESSAGES"}


@pytest.mark.parametrize(("name", "value", "check_id"), BAD_VALUES)
def test_a_bad_value_is_reported_under_its_id(
    settings: Any, name: str, value: Any, check_id: str
) -> None:
    configure(settings, **{"TOKEN": "x", name: value})

    [message] = messages()
    assert message.id == check_id
    assert f"BETATEL_RESET['{name}']" in message.msg
    assert type(value).__name__ in message.msg
    assert message.hint


@pytest.mark.parametrize(("name", "value", "check_id"), BAD_VALUES)
def test_a_request_meets_the_same_error_as_the_check(
    settings: Any, name: str, value: Any, check_id: str
) -> None:
    """Code reading a bad value gets a ConfigurationError naming the setting
    (a 503 on the pages), never a ValueError or TypeError (a 500)."""
    configure(settings, **{"TOKEN": "x", name: value})
    [message] = messages()

    with pytest.raises(ConfigurationError) as raised:
        getattr(app_settings, name)
    assert str(raised.value) == message.msg
    with pytest.raises(ConfigurationError):
        app_settings.validate()


def test_e007_a_token_is_never_quoted(settings: Any) -> None:
    configure(settings, TOKEN="eyJ-secret-part\n")

    [message] = messages()
    assert message.id == E007
    assert "secret" not in message.msg
    assert "a str of 16 characters" in message.msg


def test_e007_a_password_in_api_url_is_never_quoted(settings: Any) -> None:
    configure(settings, TOKEN="x", API_URL="https://user:secret@api.betatel.com")
    [message] = messages()
    assert "secret" not in message.msg


def test_e007_client_ip_header_names_the_meta_key(settings: Any) -> None:
    configure(settings, TOKEN="x", CLIENT_IP_HEADER="X-Forwarded-For")
    [message] = messages()
    assert "'HTTP_X_FORWARDED_FOR'" in message.msg


def test_e007_betatel_reset_must_be_a_dict(settings: Any) -> None:
    settings.BETATEL_RESET = [("TOKEN", "x")]
    assert [m.id for m in messages()] == [E007, "betatel_reset.W006"]


def test_e008_a_file_that_holds_no_certificates(settings: Any, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate\n")
    configure(settings, TOKEN="x", CA_BUNDLE=str(bundle))
    [message] = messages()
    assert message.id == "betatel_reset.E008"
    assert "no PEM certificates" in message.msg


def test_e008_a_missing_file_says_so(settings: Any) -> None:
    configure(settings, TOKEN="x", CA_BUNDLE="/nonexistent/ca.pem")
    [message] = messages()
    assert "no such file or directory" in message.msg


def test_good_values_of_every_kind_pass(settings: Any) -> None:
    configure(
        settings,
        TOKEN_PROVIDER=lambda request: "x",
        CONNECT_TIMEOUT=3,
        RETRY_MAX_WAIT=0,
        MAX_RETRIES=0,
        RATE_LIMIT_EMAIL=None,
        RATE_LIMIT_IP="",
        CA_BUNDLE=Path(certifi.where()),
        CLIENT_IP_HEADER="HTTP_X_FORWARDED_FOR",
        API_URL="https://api.betatel.com:8443/v1/",
        ENDPOINT_PATH="api/auth/reset-password/resend",
        BACKEND="tests.test_checks.QuietBackend",
        PREVENT_ENUMERATION=False,
    )
    assert ids() == []
    assert app_settings.CONNECT_TIMEOUT == 3.0
    assert app_settings.RATE_LIMIT_IP is None
    assert certifi.where() == app_settings.CA_BUNDLE
    assert app_settings.ENDPOINT_URL == (
        "https://api.betatel.com:8443/v1/api/auth/reset-password/resend"
    )


def test_a_folder_of_certificates_is_a_ca_bundle(settings: Any, tmp_path: Path) -> None:
    configure(settings, TOKEN="x", CA_BUNDLE=str(tmp_path))
    assert ids() == []


class QuietBackend(ConsoleBackend):
    """A backend given by its dotted path."""


def test_validate_checks_again_only_when_the_settings_change(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Usable settings are not checked again before every resend, but any
    change to them, even made in place, is."""
    configure(settings, TOKEN="x")
    app_settings.validate()
    checked: list[int] = []
    errors = app_settings.errors
    monkeypatch.setattr(app_settings, "errors", lambda: checked.append(1) or errors())

    app_settings.validate()
    assert checked == []

    settings.BETATEL_RESET["DEADLINE"] = -1.0  # changed in place
    with pytest.raises(ConfigurationError, match="DEADLINE"):
        app_settings.validate()
    assert len(checked) == 1
    configure(settings, TOKEN="y")
    app_settings.validate()
    assert len(checked) == 2


def test_validate_looks_again_at_a_ca_bundle_that_has_gone(settings: Any, tmp_path: Path) -> None:
    """The one check that looks outside the settings is made every time: a
    bundle removed after the settings were found usable is a 503, not a 500
    from deep in the HTTP client."""
    bundle = tmp_path / "ca.pem"
    bundle.write_text(Path(certifi.where()).read_text())
    configure(settings, TOKEN="x", CA_BUNDLE=str(bundle))
    app_settings.validate()
    bundle.unlink()
    with pytest.raises(ConfigurationError, match="CA_BUNDLE"):
        app_settings.validate()
