"""django-tasks-db's DatabaseBackend and its worker, run in this test process.

Run in a process of its own (``--ds=tests.support.settings.tasks_db``, which installs
django-tasks-db) by ``tests/test_tasks.py::test_database_backend_with_its_worker``;
the file name keeps the main run from collecting it.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django_tasks_db.models import DBTaskResult

from betatel_reset import tasks
from betatel_reset.choices import BatchState, Outcome, Source
from betatel_reset.models import ResendAttempt, ResendBatch
from betatel_reset.testing import Behaviour, FakeBetatelServer

# Fixtures (admin_client, betatel) and helpers shared with test_tasks.py; a
# test naming a fixture as its parameter "redefines" it as far as ruff sees.
from tests.test_tasks import (  # noqa: F401
    admin_client,
    audit,
    betatel,
    first_message,
    make_users,
    post_yes,
    sent_to,
)

User = get_user_model()


def run_db_worker() -> None:
    """``manage.py db_worker --batch`` in this process; it installs signal
    handlers, which are put back afterwards."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@pytest.mark.django_db(transaction=True)
def test_database_backend_and_worker(
    admin_client: Client,  # noqa: F811
    settings: Any,
    betatel: FakeBetatelServer,  # noqa: F811
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "TASK_CHUNK_SIZE": 2}
    selected = make_users("ada@example.com", "ghost@example.com", "carol@example.com")

    response = post_yes(admin_client, selected)

    assert "Queued 3 " in first_message(response)
    assert sorted(DBTaskResult.objects.values_list("status", flat=True)) == ["READY", "READY"]
    assert betatel.requests == []

    run_db_worker()

    assert sorted(DBTaskResult.objects.values_list("status", flat=True)) == [
        "SUCCESSFUL",
        "SUCCESSFUL",
    ]
    returned = sorted(
        r.return_value["outcomes"].get("sent", 0) for r in DBTaskResult.objects.all()
    )
    assert returned == [1, 1]
    assert ResendBatch.objects.get().state == BatchState.FINISHED
    assert sorted(sent_to(betatel)) == [
        "ada@example.com",
        "carol@example.com",
        "ghost@example.com",
    ]
    root = User.objects.get(username="root")
    rows = ResendAttempt.objects.all()
    assert sorted((r.email, r.outcome) for r in rows) == [
        ("ada@example.com", "sent"),
        ("carol@example.com", "sent"),
        ("ghost@example.com", "unknown_account"),
    ]
    assert {(r.source, r.actor) for r in rows} == {(Source.ADMIN, root)}


@pytest.mark.django_db(transaction=True)
def test_worker_waits_out_retry_after(
    settings: Any,
    betatel: FakeBetatelServer,  # noqa: F811
) -> None:
    # Longer than the HTTP backend waits inside one send: the task waits.
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "RETRY_MAX_WAIT": 0.5}
    betatel.behave(Behaviour.status(429, retry_after=1))
    tasks.enqueue_in_chunks(["ada@example.com", "bob@example.com"], source=Source.TASK, actor=None)
    started = time.monotonic()

    run_db_worker()

    assert time.monotonic() - started >= 1
    assert sent_to(betatel) == ["ada@example.com", "ada@example.com", "bob@example.com"]
    assert audit() == [
        ("ada@example.com", Outcome.UPSTREAM_RATE_LIMITED),
        ("ada@example.com", Outcome.SENT),
        ("bob@example.com", Outcome.SENT),
    ]
    [task] = DBTaskResult.objects.all()
    assert task.status == "SUCCESSFUL"
    assert task.return_value["outcomes"] == {"sent": 2}
