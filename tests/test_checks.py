"""One test per system check id."""

from __future__ import annotations

from typing import Any

from django.core.checks import run_checks

from .conftest import make_jwt


def ids() -> list[str]:
    return sorted(m.id or "" for m in run_checks() if (m.id or "").startswith("betatel_reset."))


def configure(settings: Any, debug: bool = False, **values: Any) -> None:
    settings.DEBUG = debug
    settings.BETATEL_RESET = values


def test_test_settings_are_clean() -> None:
    assert ids() == []


def test_e001_http_backend_without_token(settings: Any) -> None:
    configure(settings, BACKEND="http", API_URL="https://api.betatel.com")
    assert ids() == ["betatel_reset.E001"]


def test_e001_not_raised_for_console_backend(settings: Any) -> None:
    configure(settings, BACKEND="console")
    assert ids() == []


def test_e001_not_raised_with_a_provider(settings: Any) -> None:
    configure(settings, TOKEN_PROVIDER="tests.support.token_providers.static_provider")
    assert ids() == []


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
