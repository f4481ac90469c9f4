"""Benchmark the admin's bulk resend, against a local fake Betatel with latency.

    python -m bench.admin_bulk                 # 1,000 users queued, 100 sent inline
    python -m bench.admin_bulk --n 5000 --inline 200 --latency 0.1

Through the real admin action (Django's test client, ``post=yes``) on the bench
site with a throw-away SQLite file: queued (the response time for ``--n`` users,
django-tasks-db's backend) and inline (sends per second while the admin waits,
one at a time and with ``--concurrency``, on the immediate backend).
"""

from __future__ import annotations

import tempfile
import time
from importlib.util import find_spec
from typing import Any

from bench.harness import site_in_process
from bench.report import arguments, finish, table
from betatel_reset.testing import FakeBetatelServer

TASKS = "django.tasks" if find_spec("django.tasks") else "django_tasks"
IMMEDIATE = {"default": {"BACKEND": f"{TASKS}.backends.immediate.ImmediateBackend"}}
DATABASE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__)
    parser.add_argument("--n", type=int, default=1000, help="users selected and queued")
    parser.add_argument("--inline", type=int, default=100, help="users sent inline")
    parser.add_argument("--latency", type=float, default=0.05, help="the fake's latency, seconds")
    parser.add_argument("--concurrency", type=int, default=8, help="INLINE_CONCURRENCY")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.inline, args.latency = 20, 6, 0.01
    fake = FakeBetatelServer(token="bench-token", latency=args.latency)
    with tempfile.TemporaryDirectory() as tmp, fake:
        database = f"sqlite:///{tmp}/bench.sqlite3?timeout=30&transaction_mode=IMMEDIATE"
        site_in_process(
            database, API_URL=fake.url, BACKEND="http", INLINE_MAX_BATCH=max(args.n, 1)
        )
        rows = measure(args.n, args.inline, args.concurrency, fake)
    width = max(len(label) for label, _value in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    text = f"Fake Betatel latency {args.latency * 1000:.0f} ms.\n\n" + table(
        "measurement | result", (f"{label} | {value}" for label, value in rows)
    )
    finish(args.json, text, dict(rows))


def measure(
    n: int, inline: int, concurrency: int, fake: FakeBetatelServer
) -> list[tuple[str, str]]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client, override_settings
    from django.urls import reverse
    from django_tasks_db.models import DBTaskResult

    from betatel_reset.models import ResendAttempt

    users = get_user_model()
    admin = users.objects.create_superuser("bench-admin", "", "pw")  # no address: skipped
    users.objects.bulk_create(
        users(username=f"user{i:06}", email=f"user{i:06}@example.com", password="!")
        for i in range(max(n, inline))
    )
    selected = users.objects.filter(username__startswith="user").values_list("pk", flat=True)
    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(admin)
    changelist = reverse("admin:auth_user_changelist")

    def confirmed(query: str, **selection: Any) -> float:
        """Seconds the confirmed action takes on ``selection``; it must redirect."""
        started = time.perf_counter()
        response = client.post(
            changelist + query, {"action": "resend_reset_email_action", "post": "yes", **selection}
        )
        elapsed = time.perf_counter() - started
        if response.status_code != 302:
            raise SystemExit(f"The action answered {response.status_code}, not a redirect.")
        return elapsed

    # Queued: "select all" of the n users, confirmed.
    with override_settings(TASKS=DATABASE):
        elapsed = confirmed("?q=user", _selected_action=selected[:1], select_across="1")
    rows = [
        (f"queued: action response for {n} users", f"{elapsed * 1000:.0f} ms"),
        ("queued: tasks in the database", str(DBTaskResult.objects.count())),
    ]
    # Inline: the immediate backend, one at a time, then concurrently.
    for threads in sorted({1, concurrency}):
        ResendAttempt.objects.all().delete()
        fake.requests.clear()
        betatel = {**settings.BETATEL_RESET, "INLINE_CONCURRENCY": threads}
        with override_settings(TASKS=IMMEDIATE, BETATEL_RESET=betatel):
            elapsed = confirmed("", _selected_action=selected[:inline])
        sent = ResendAttempt.objects.filter(outcome="sent").count()
        rows.append(
            (
                f"inline: {inline} sends, concurrency {threads}",
                f"{elapsed:.2f} s, {sent / elapsed:.1f} sends/s ({sent} sent, "
                f"{len(fake.requests)} requests)",
            )
        )
    return rows


if __name__ == "__main__":
    main()
