"""The console and locmem backends, and backend selection."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from betatel_reset.backends import ALIASES, BaseBackend, get_backend, locmem
from betatel_reset.backends import console as console_module
from betatel_reset.choices import Outcome
from betatel_reset.exceptions import ConfigurationError
from betatel_reset.services import resend_reset_email

pytestmark = pytest.mark.django_db


def use_backend(settings: Any, backend: str, **extra: Any) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "BACKEND": backend, **extra}


def test_console_prints_the_request_with_the_token_masked(
    settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    use_backend(settings, "console", TOKEN="fake-console-token-0123456789")
    result = resend_reset_email("ada@example.com")

    out = capsys.readouterr().out
    assert "POST https://api.betatel.test/api/auth/reset-password/resend" in out
    assert "Content-Type: application/json" in out
    assert json.dumps({"email": "ada@example.com"}) in out
    assert "Authorization: Bearer <redacted, 29 characters>" in out
    assert "fake-console-token" not in out
    assert result.outcome == Outcome.SENT
    assert result.status_code is None


def test_console_works_without_a_token(settings: Any, capsys: pytest.CaptureFixture[str]) -> None:
    use_backend(settings, "console", TOKEN=None)
    resend_reset_email("ada@example.com")
    assert "Bearer <no token>" in capsys.readouterr().out


def test_console_writes_to_a_given_stream() -> None:
    stream = io.StringIO()
    console_module.ConsoleBackend(stream=stream).send("ada@example.com", token=None)
    assert "ada@example.com" in stream.getvalue()


def test_locmem_records_each_resend(settings: Any) -> None:
    use_backend(settings, "locmem")
    resend_reset_email("ada@example.com")
    resend_reset_email("grace@example.com")
    assert [r.email for r in locmem.outbox] == ["ada@example.com", "grace@example.com"]
    assert locmem.outbox[0].token == "fake-token-for-tests"
    assert "fake-token-for-tests" not in repr(locmem.outbox[0])


def test_backend_by_dotted_path(settings: Any) -> None:
    use_backend(settings, "betatel_reset.backends.locmem.LocmemBackend")
    resend_reset_email("ada@example.com")
    assert len(locmem.outbox) == 1


@pytest.mark.parametrize("path", ["nope.Nothing", "betatel_reset.conf.AppSettings"])
def test_bad_backend_is_a_configuration_error(path: str) -> None:
    with pytest.raises(ConfigurationError, match=r"BETATEL_RESET\['BACKEND'\]"):
        get_backend(path)


def test_aliases_resolve_to_backends() -> None:
    for alias in ALIASES:
        assert isinstance(get_backend(alias), BaseBackend)
