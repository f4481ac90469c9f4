"""Benchmark the admin's bulk resend, against a local fake Betatel with latency.

    python -m bench.admin_bulk                 # 1,000 users queued, 100 sent inline
    python -m bench.admin_bulk --n 5000 --inline 200 --latency 0.1

Two measurements, both through the real admin action (Django's test client,
post=yes) on a throw-away SQLite file:

1. **queued**: with django-tasks-db's ``DatabaseBackend``, the response time of
   the action for ``--n`` selected users ("select all"), and the tasks queued;
2. **inline**: with the immediate backend, the throughput of sending
   ``--inline`` users while the admin waits, one at a time and with the
   configured concurrency (threads sharing the pooled session).

It prints numbers; it asserts nothing about them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from betatel_reset.testing import FakeBetatelServer

TOKEN = "bench-token"
IMMEDIATE = ("django.tasks" if find_spec("django.tasks") else "django_tasks") + (
    ".backends.immediate.ImmediateBackend"
)
DATABASE = "django_tasks_db.DatabaseBackend"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="users selected and queued")
    parser.add_argument("--inline", type=int, default=100, help="users sent inline")
    parser.add_argument(
        "--latency", type=float, default=0.05, help="fake Betatel's seconds per answer"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="INLINE_CONCURRENCY")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp, FakeBetatelServer(token=TOKEN) as betatel:
        betatel.latency = args.latency
        _configure(Path(tmp) / "bench.sqlite3", betatel.url, args.concurrency, args.n)
        rows = _run(args, betatel)
    width = max(len(label) for label, _value in rows)
    print(f"admin bulk resend (fake Betatel latency {args.latency * 1000:.0f} ms)")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


def _configure(db: Path, api_url: str, concurrency: int, n: int) -> None:
    import django
    from django.conf import settings

    import tests.settings as base

    values = {name: getattr(base, name) for name in dir(base) if name.isupper()}
    values.update(
        INSTALLED_APPS=[*base.INSTALLED_APPS, "django_tasks_db"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(db),
                "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
            }
        },
        TASKS={"default": {"BACKEND": DATABASE}},
        BETATEL_RESET={
            "API_URL": api_url,
            "TOKEN": TOKEN,
            "BACKEND": "http",
            "INLINE_CONCURRENCY": concurrency,
            "INLINE_MAX_BATCH": max(n, 1),
            "CIRCUIT_FAILURE_THRESHOLD": 10_000,
        },
        DEBUG=False,
    )
    settings.configure(**values)
    django.setup()


def _run(args: argparse.Namespace, betatel: FakeBetatelServer) -> list[tuple[str, str]]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client, override_settings
    from django.urls import reverse
    from django_tasks_db.models import DBTaskResult

    from betatel_reset.models import ResendAttempt

    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    admin = user_model.objects.create_superuser("bench-admin", "", "pw")  # no address: skipped
    user_model.objects.bulk_create(
        user_model(username=f"user{i:06}", email=f"user{i:06}@example.com", password="!")
        for i in range(max(args.n, args.inline))
    )
    client = Client()
    client.force_login(admin)
    changelist = reverse("admin:auth_user_changelist")
    rows: list[tuple[str, str]] = []

    # 1. Queued: "select all" of n users, confirmed.
    with override_settings(TASKS={"default": {"BACKEND": DATABASE}}):
        some = [str(pk) for pk in user_model.objects.values_list("pk", flat=True)[: args.n]]
        data: dict[str, Any] = {
            "action": "resend_reset_email_action",
            "_selected_action": some[:1],
            "select_across": "1",
            "post": "yes",
        }
        started = time.perf_counter()
        response = client.post(f"{changelist}?q=user", data)
        elapsed = time.perf_counter() - started
    _expect_redirect(response)
    rows.append((f"queued: action response for {args.n} users", f"{elapsed * 1000:.0f} ms"))
    rows.append(("queued: tasks in the database", str(DBTaskResult.objects.count())))

    # 2. Inline: the same action with the immediate backend, sequential and concurrent.
    pks = [str(pk) for pk in user_model.objects.filter(email__gt="").values_list("pk", flat=True)]
    for concurrency in sorted({1, args.concurrency}):
        selected = pks[: args.inline]
        ResendAttempt.objects.all().delete()
        betatel.reset()
        betatel.latency = args.latency
        overrides = {
            "TASKS": {"default": {"BACKEND": IMMEDIATE}},
            "BETATEL_RESET": {
                **_settings_dict(),
                "INLINE_CONCURRENCY": concurrency,
            },
        }
        with override_settings(**overrides):
            started = time.perf_counter()
            response = client.post(
                changelist,
                {
                    "action": "resend_reset_email_action",
                    "_selected_action": selected,
                    "post": "yes",
                },
            )
            elapsed = time.perf_counter() - started
        _expect_redirect(response)
        sent = ResendAttempt.objects.filter(outcome="sent").count()
        rows.append(
            (
                f"inline: {len(selected)} sends, concurrency {concurrency}",
                f"{elapsed:.2f} s, {sent / elapsed:.1f} sends/s ({sent} sent, "
                f"{len(betatel.requests)} requests)",
            )
        )
    return rows


def _settings_dict() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.BETATEL_RESET)


def _expect_redirect(response: Any) -> None:
    if response.status_code != 302:
        raise SystemExit(f"The action answered {response.status_code}, not a redirect.")


if __name__ == "__main__":
    main()
