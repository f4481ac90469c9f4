"""``manage.py betatel_resend`` and ``manage.py betatel_demo_setup``."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import responses
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from betatel_reset.backends import locmem
from betatel_reset.choices import Outcome, Source
from betatel_reset.models import ResendAttempt

from .conftest import TOKEN, expect_resends
from .support.real_services import ROOT

pytestmark = pytest.mark.django_db


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def resend(*args: str, **options: Any) -> tuple[str, str]:
    """Run the command; returns (stdout, stderr)."""
    out, err = options.pop("stdout", StringIO()), StringIO()
    call_command("betatel_resend", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def sent() -> list[str]:
    return [r.email for r in locmem.outbox]


def test_arguments(locmem_backend: None) -> None:
    out, err = resend("ada@example.com", "grace@Example.com")

    assert sent() == ["ada@example.com", "grace@example.com"]
    assert out.strip().splitlines() == [
        "Batch #1: 2 addresses.",
        "Batch #1: 2 sent, 0 failed, 0 in doubt, 0 remaining. 0 invalid, 0 repeated.",
    ]
    assert err == ""
    rows = ResendAttempt.objects.all()
    assert {(r.source, r.outcome, r.actor) for r in rows} == {(Source.COMMAND, Outcome.SENT, None)}


def test_file_skips_blanks_comments_and_repeats(tmp_path: Path, locmem_backend: None) -> None:
    path = tmp_path / "addresses.txt"
    path.write_text(
        "\ufeffada@example.com\n\n# support tickets\n  grace@example.com  \nADA@example.com\n",
        encoding="utf-8",
    )

    out, _err = resend("--file", str(path))

    assert sent() == ["ada@example.com", "grace@example.com"]
    assert "2 sent, 0 failed, 0 in doubt, 0 remaining. 0 invalid, 1 repeated." in out


def test_stdin(locmem_backend: None) -> None:
    resend("--file", "-", stdin=StringIO("ada@example.com\ngrace@example.com\n"))
    assert sent() == ["ada@example.com", "grace@example.com"]


def test_arguments_and_file_together(tmp_path: Path, locmem_backend: None) -> None:
    path = tmp_path / "more.txt"
    path.write_text("grace@example.com\nada@example.com\n")
    resend("ada@example.com", "--file", str(path))
    assert sent() == ["ada@example.com", "grace@example.com"]


def test_invalid_addresses_are_reported_and_fail_the_run(
    tmp_path: Path, locmem_backend: None
) -> None:
    path = tmp_path / "addresses.txt"
    path.write_text("ada@example.com\nnot an address\n")
    err = StringIO()

    with pytest.raises(CommandError) as raised:
        call_command("betatel_resend", "--file", str(path), stdout=StringIO(), stderr=err)

    assert raised.value.returncode == 1
    assert f"{path}:2: not a valid address: 'not an address'" in err.getvalue()
    assert sent() == ["ada@example.com"]


def test_dry_run_sends_and_records_nothing(locmem_backend: None) -> None:
    out, _err = resend("ada@example.com", "ada@EXAMPLE.com", "grace@example.com", "--dry-run")

    assert out.splitlines() == [
        "would send: ada@example.com",
        "would send: grace@example.com",
        "Dry run: 2 to send, 0 invalid, 1 repeated; nothing sent.",
    ]
    assert sent() == []
    assert not ResendAttempt.objects.exists()


def test_dry_run_with_an_invalid_address_fails() -> None:
    with pytest.raises(CommandError) as raised:
        resend("ada@example.com", "nope", "--dry-run")
    assert raised.value.returncode == 1


def test_a_failed_send_fails_the_run(mocked: responses.RequestsMock, settings: Any) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "MAX_RETRIES": 0}
    expect_resends(mocked, sent="ada@example.com", unknown="ghost@example.com")
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError, match="1 send") as raised:
        call_command(
            "betatel_resend", "ada@example.com", "ghost@example.com", stdout=out, stderr=err
        )

    assert raised.value.returncode == 1
    assert (
        out.getvalue().strip().splitlines()[-1]
        == "Batch #1: 1 sent, 1 failed (Unknown account: 1), 0 in doubt, 0 remaining. "
        "0 invalid, 0 repeated."
    )
    assert "failed: ghost@example.com: Unknown account" in err.getvalue()
    assert all(c.request.headers["Authorization"] == f"Bearer {TOKEN}" for c in mocked.calls)


def test_misconfiguration_stops_the_run(settings: Any) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "TOKEN": None}
    with pytest.raises(CommandError, match="misconfigured: No Betatel API token") as raised:
        resend("ada@example.com", "grace@example.com")
    assert raised.value.returncode == 1
    assert ResendAttempt.objects.count() == 1  # the first one; then it stopped


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Give addresses as arguments"),
        (("--file", "/nonexistent/addresses.txt"), "Cannot read /nonexistent/addresses.txt"),
    ],
)
def test_nothing_to_read(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message) as raised:
        resend(*args)
    assert raised.value.returncode == 2


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(CommandError, match="concurrency"):
        resend("ada@example.com", "--concurrency", "0")


def test_progress_only_on_a_terminal(locmem_backend: None) -> None:
    plain, _err = resend("ada@example.com")
    assert "\r" not in plain
    terminal, _err = resend("ada@example.com", "grace@example.com", stdout=Terminal())
    assert "\r[" + "#" * 15 + "-" * 15 + "] 1/2" in terminal
    assert terminal.endswith("2 sent, 0 failed, 0 in doubt, 0 remaining. 0 invalid, 0 repeated.\n")


def test_exit_status_of_a_real_process() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "django", "betatel_resend", "--dry-run", *args],
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert run("ada@example.com").returncode == 0
    assert run("ada@example.com", "nope").returncode == 1
    assert run().returncode == 2


# The demo's setup command ------------------------------------------------------


def test_demo_setup_refuses_without_debug(settings: Any) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("betatel_demo_setup", stdout=StringIO())
    assert not get_user_model().objects.exists()


def test_demo_setup_is_idempotent(settings: Any) -> None:
    settings.DEBUG = True
    out = StringIO()
    call_command("betatel_demo_setup", stdout=out)
    call_command("betatel_demo_setup", stdout=out)

    assert "admin / admin" in out.getvalue()
    user_model = get_user_model()
    admin = user_model.objects.get(username="admin")
    assert admin.is_superuser
    assert admin.is_staff
    assert admin.check_password("admin")
    assert user_model.objects.count() == 6
    assert user_model.objects.get(username="nomail").email == ""
    assert not user_model.objects.get(username="sleeper").is_active
