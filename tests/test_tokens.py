from __future__ import annotations

import datetime
from typing import Any

import pytest

from betatel_reset.exceptions import ConfigurationError
from betatel_reset.tokens import get_token, jwt_expiry, mask_token

from .conftest import make_jwt

# Shaped like the vendor's example token (same claims and lifetime), but fake.
VENDOR_SHAPED = make_jwt(
    id="fake-user-id", email="ada@example.com", role="user", iat=1_743_424_203, exp=1_743_427_803
)


def test_reads_exp_from_a_vendor_shaped_token() -> None:
    assert jwt_expiry(VENDOR_SHAPED) == datetime.datetime(
        2025, 3, 31, 13, 30, 3, tzinfo=datetime.UTC
    )


@pytest.mark.parametrize(
    "token",
    [
        "opaque-token",
        "a.b.c",
        "a.!!!.c",
        make_jwt(sub="x"),
        make_jwt(exp="soon"),
        make_jwt(exp=True),
        make_jwt(exp=10**20),
    ],
)
def test_tokens_without_a_readable_exp(token: str) -> None:
    assert jwt_expiry(token) is None


def test_static_token(settings: Any) -> None:
    settings.BETATEL_RESET = {"TOKEN": "static"}
    assert get_token() == "static"
    assert get_token(refresh=True) is None


def test_provider_returning_nothing_means_no_token(settings: Any) -> None:
    settings.BETATEL_RESET = {"TOKEN": "static", "TOKEN_PROVIDER": lambda request: ""}
    assert get_token() is None


@pytest.mark.parametrize("provider", ["tests.support.token_providers.missing", 42])
def test_bad_provider_is_a_configuration_error(settings: Any, provider: Any) -> None:
    settings.BETATEL_RESET = {"TOKEN_PROVIDER": provider}
    with pytest.raises(ConfigurationError, match="TOKEN_PROVIDER"):
        get_token()


def test_mask_token_hides_the_value() -> None:
    assert mask_token("abcdef") == "<redacted, 6 characters>"
    assert mask_token(None) == "<no token>"


def test_a_failing_provider_is_a_configuration_error(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def provider(request: Any) -> str:
        raise RuntimeError("vault is down")

    settings.BETATEL_RESET = {"TOKEN_PROVIDER": provider}
    with pytest.raises(ConfigurationError, match="raised RuntimeError") as info:
        get_token()
    assert info.value.__context__ is None
    assert any("vault is down" in (r.exc_text or "") for r in caplog.records)
