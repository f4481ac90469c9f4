"""Bulk sending: the bounded-concurrency loop, the task on the immediate
backend, queued through the admin, and django-tasks-db with a real worker,
including Betatel's 429 and a worker killed mid-batch."""

from __future__ import annotations

import importlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.core.checks import run_checks
from django.test import Client
from django.urls import reverse
from django.utils.module_loading import import_string

from betatel_reset import tasks
from betatel_reset.bulk import _usable_concurrency, chunked, run_bounded
from betatel_reset.choices import Source
from betatel_reset.exceptions import ConfigurationError
from betatel_reset.models import ResendAttempt, ResendBatch
from betatel_reset.testing import Behaviour, FakeBetatelServer
from tests.support.fake_betatel import FAKE_BETATEL_TOKEN

from .support.real_services import ROOT, in_django, run_scenarios

FRAMEWORK = "django.tasks" if find_spec("django.tasks") else "django_tasks"
DUMMY = f"{FRAMEWORK}.backends.dummy.DummyBackend"
DummyBackend = import_string(DUMMY)

User = get_user_model()


@pytest.fixture
def betatel(settings: Any) -> Iterator[FakeBetatelServer]:
    """The fake Betatel API, with ghost@example.com an unknown account."""
    with FakeBetatelServer(
        token=FAKE_BETATEL_TOKEN, unknown_emails={"ghost@example.com"}
    ) as server:
        settings.BETATEL_RESET = {
            **settings.BETATEL_RESET,
            "API_URL": server.url,
            "TOKEN": FAKE_BETATEL_TOKEN,
            "CIRCUIT_FAILURE_THRESHOLD": 100,
        }
        yield server


def sent_to(server: FakeBetatelServer) -> list[str]:
    assert all(r.bearer == FAKE_BETATEL_TOKEN for r in server.requests)
    return [r.json["email"] for r in server.requests]


def chunks(batch: ResendBatch) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for chunk, email in batch.addresses.order_by("id").values_list("chunk", "email"):
        found.setdefault(chunk, []).append(email)
    return found


def audit() -> list[tuple[str, str]]:
    return list(ResendAttempt.objects.order_by("id").values_list("email", "outcome"))


# The bounded-concurrency loop ---------------------------------------------------


def test_run_bounded_never_exceeds_the_concurrency() -> None:
    running, peak, done = 0, 0, []
    lock = threading.Lock()

    def work(item: int) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
            done.append(item)

    run_bounded(range(24), work, concurrency=4)

    assert sorted(done) == list(range(24))
    assert peak == 4


def test_run_bounded_reads_its_input_lazily_and_stops_at_an_error() -> None:
    taken: list[int] = []

    def items() -> Iterator[int]:
        for n in range(1000):
            taken.append(n)
            yield n

    def work(item: int) -> None:
        if item == 5:
            raise ConfigurationError("broken")
        time.sleep(0.005)

    with pytest.raises(ConfigurationError, match="broken"):
        run_bounded(items(), work, concurrency=3)
    assert len(taken) < 20  # stopped soon after, never read the rest


def test_run_bounded_with_one_runs_in_the_calling_thread() -> None:
    threads = set()
    run_bounded("abc", lambda _item: threads.add(threading.current_thread()), concurrency=1)
    assert threads == {threading.current_thread()}


def test_chunked() -> None:
    assert list(chunked(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert list(chunked([], 2)) == []


@pytest.mark.django_db
def test_threads_are_not_used_on_an_in_memory_database() -> None:
    # They could not share it (tests.settings); a file or server database can.
    assert _usable_concurrency(8) == 1


# The task on the immediate backend ------------------------------------------


@pytest.mark.django_db
def test_task_on_the_immediate_backend(betatel: FakeBetatelServer) -> None:
    result = tasks.send_reset_emails.enqueue(["ada@example.com", "ghost@example.com"])

    assert result.status == "SUCCESSFUL"
    assert result.return_value == {
        "total": 2,
        "sent": 1,
        "failed": 1,
        "outcomes": {"sent": 1, "unknown_account": 1},
        "failed_addresses": ["ghost@example.com"],
        "batch_id": ResendBatch.objects.get().pk,
    }
    assert sent_to(betatel) == ["ada@example.com", "ghost@example.com"]
    assert audit() == [("ada@example.com", "sent"), ("ghost@example.com", "unknown_account")]
    assert set(ResendAttempt.objects.values_list("source", flat=True)) == {Source.TASK}


@pytest.mark.django_db
def test_immediate_backend_failures_are_in_the_result(settings: Any) -> None:
    # The immediate backend does not raise: run_now reads the result.
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "TOKEN": None}

    result = tasks.send_reset_emails.enqueue(["ada@example.com"])

    assert result.status == "FAILED"
    assert result.errors[0].exception_class_path == "betatel_reset.exceptions.ConfigurationError"
    with pytest.raises(ConfigurationError, match="No Betatel API token"):
        tasks.run_now(["ada@example.com"], source=Source.ADMIN, actor=None)


@pytest.mark.django_db
def test_a_long_retry_after_is_not_waited_for(betatel: FakeBetatelServer, settings: Any) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "BULK_MAX_RETRY_WAIT": 5}
    betatel.behave(Behaviour.status(429, retry_after=120))
    started = time.monotonic()

    result = tasks.send_reset_emails.enqueue(["ada@example.com"])

    assert time.monotonic() - started < 3
    assert result.return_value["outcomes"] == {"upstream_rate_limited": 1}
    assert audit() == [("ada@example.com", "upstream_rate_limited")]


@pytest.mark.django_db
def test_retries_are_bounded(betatel: FakeBetatelServer, settings: Any) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "MAX_RETRIES": 0, "BULK_RETRIES": 2}
    betatel.always(Behaviour.status(429, retry_after=0))

    result = tasks.send_reset_emails.enqueue(["ada@example.com"])

    assert result.return_value["failed_addresses"] == ["ada@example.com"]
    assert audit() == [("ada@example.com", "upstream_rate_limited")] * 3  # 1 + 2 retries


def test_e005_unknown_task_backend(settings: Any) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "TASK_BACKEND": "nowhere"}
    assert [m.id for m in run_checks() if (m.id or "").startswith("betatel_reset.")] == [
        "betatel_reset.E005"
    ]


# Queued through the admin ------------------------------------------------------


def make_users(*addresses: str) -> list[str]:
    return [
        str(User.objects.create_user(address.partition("@")[0], address).pk)
        for address in addresses
    ]


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("root", "root@staff.example", "pw"))
    return client


def first_message(response: Any) -> str:
    return str(next(iter(get_messages(response.wsgi_request))))


def post_yes(client: Client, selected: list[str]) -> Any:
    return client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "resend_reset_email_action", "_selected_action": selected, "post": "yes"},
        follow=True,
    )


@pytest.mark.django_db
def test_the_admin_queues_chunks_on_the_backend_named_when_it_sends(
    admin_client: Client, settings: Any, locmem_backend: None
) -> None:
    # TASK_BACKEND names an alias configured after the module was imported:
    # the chunks go there, not to the framework's default.
    settings.TASKS = {**settings.TASKS, "queue": {"BACKEND": DUMMY}}
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "TASK_BACKEND": "queue",
        "TASK_CHUNK_SIZE": 2,
    }
    backend = tasks.get_task_backend()
    selected = make_users("ada@example.com", "bob@example.com", "carol@example.com")
    selected += make_users("nomail@")  # no valid address: skipped

    response = post_yes(admin_client, selected)

    assert first_message(response).startswith(
        "Queued 3 reset-password emails for background workers (2 tasks, 1 skipped)."
    )
    root = User.objects.get(username="root")
    batch = ResendBatch.objects.get()
    assert (batch.source, batch.started_by, batch.state) == ("admin", root, "queued")
    assert [(r.args, r.backend) for r in backend.results] == [
        ([batch.pk, 0], "queue"),
        ([batch.pk, 1], "queue"),
    ]
    assert chunks(batch) == {0: ["ada@example.com", "bob@example.com"], 1: ["carol@example.com"]}
    assert not ResendAttempt.objects.exists()  # the worker sends, not the request


def test_importing_the_tasks_does_not_read_task_backend(settings: Any) -> None:
    """A site may configure TASK_BACKEND's alias after the app is imported
    (late settings, override_settings): the module must import regardless."""
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "TASK_BACKEND": "configured-later"}
    try:
        importlib.reload(tasks)
    finally:
        settings.BETATEL_RESET = {**settings.BETATEL_RESET, "TASK_BACKEND": "default"}
        importlib.reload(tasks)


class RefusingAfterOne(DummyBackend):  # type: ignore[misc]
    """A queue that takes one task, then refuses (full, or its broker is down)."""

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        if self.results:
            raise ConnectionError("the broker went away")
        return super().enqueue(task, args, kwargs)


@pytest.mark.django_db
def test_a_queue_that_refuses_midway_is_reported_exactly(
    admin_client: Client, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.TASKS = {"default": {"BACKEND": f"{__name__}.RefusingAfterOne"}}
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "TASK_CHUNK_SIZE": 2}
    selected = make_users("ada@example.com", "bob@example.com", "carol@example.com")

    response = post_yes(admin_client, selected)

    message = first_message(response)
    assert message.startswith(
        "Queued 2 reset-password emails for background workers (1 task, 0 skipped). "
        "1 address could not be queued: the task queue refused it."
    )
    assert next(iter(get_messages(response.wsgi_request))).level_tag == "error"
    batch = ResendBatch.objects.get()
    assert [r.args for r in tasks.get_task_backend().results] == [[batch.pk, 0]]
    # What was not queued is not in the batch either: resuming it never sends it.
    assert chunks(batch) == {0: ["ada@example.com", "bob@example.com"]}
    assert batch.total == 2
    assert f"refused chunk 1 of batch {batch.pk}; 2 of 3 addresses were queued" in caplog.text


@pytest.mark.django_db
def test_a_queue_backend_is_not_capped(
    admin_client: Client, settings: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    settings.TASKS = {"default": {"BACKEND": DUMMY}}
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "INLINE_MAX_BATCH": 1}
    with django_capture_on_commit_callbacks(execute=True):
        response = post_yes(admin_client, make_users("ada@example.com", "bob@example.com"))
    assert "Queued 2 " in first_message(response)


# django-tasks-db and its worker --------------------------------------------------


def test_database_backend_with_its_worker() -> None:
    """tests/support/tasks_db_scenarios.py, in its own process: it needs django-tasks-db
    installed, which tests.settings leaves out (on Django 6.1 its JSONField
    makes every system check run touch the database)."""
    run_scenarios("tests.support.settings.tasks_db", "tests/support/tasks_db_scenarios.py")


STATE = """
from django_tasks_db.models import DBTaskResult
from betatel_reset.models import BatchAddress, ResendBatch
print(json.dumps({
    "tasks": sorted(t.status for t in DBTaskResult.objects.all()),
    "batch": ResendBatch.objects.get().state,
    "addresses": {a.email: a.state for a in BatchAddress.objects.all()},
}))
"""


def test_a_killed_worker_s_chunk_is_finished_by_another(tmp_path: Path) -> None:
    """SIGKILL a db_worker process mid-chunk: once its chunk has made no
    progress for BULK_STALE_AFTER, a second worker finishes it along with the
    queued chunks. Every address reaches Betatel exactly once, except those
    in flight at the kill: in doubt, at most the concurrency, never resent."""
    addresses = [f"user{n:02}@example.com" for n in range(12)]
    concurrency, stale_after = 2, 2
    with FakeBetatelServer(token=FAKE_BETATEL_TOKEN, latency=0.3) as betatel:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.support.settings.tasks_db",
            "BETATEL_TEST_DB": str(tmp_path / "db.sqlite3"),
            "BETATEL_TEST_API_URL": betatel.url,
            "BETATEL_TEST_CONCURRENCY": str(concurrency),
            "BETATEL_TEST_STALE_AFTER": str(stale_after),
            "PYTHONPATH": str(ROOT),
        }
        chunks = in_django(
            "from django.core.management import call_command\n"
            "from betatel_reset.tasks import enqueue_in_chunks\n"
            "call_command('migrate', verbosity=0)\n"
            f"print(enqueue_in_chunks({addresses!r}, source='task', actor=None).tasks)\n",
            env,
        )
        assert chunks == 4  # of 3 addresses (tests.support.settings.tasks_db)

        worker = subprocess.Popen(
            [sys.executable, "-m", "django", "db_worker", "--no-startup-delay", "--no-reload"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while len(betatel.requests) < 5 and worker.poll() is None:
                assert time.monotonic() < deadline, "the worker never got going"
                time.sleep(0.01)
            # The second chunk is under way, two of its requests in flight.
            worker.send_signal(signal.SIGKILL)
        finally:
            worker.kill()
            worker.wait(timeout=10)
        killed_at = time.monotonic()

        state = in_django(STATE, env)
        assert state["tasks"] == ["READY", "READY", "RUNNING", "SUCCESSFUL"]
        in_flight = {a for a, s in state["addresses"].items() if s == "in_flight"}
        assert 1 <= len(in_flight) <= concurrency
        assert "pending" in state["addresses"].values()

        time.sleep(max(0.0, killed_at + stale_after + 0.2 - time.monotonic()))
        betatel.latency = 0
        subprocess.run(
            [sys.executable, "-m", "django", "db_worker", "--batch", "--no-startup-delay"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            check=True,
        )
        state = in_django(STATE, env)
        assert state["batch"] == "finished"
        in_doubt = {a for a, s in state["addresses"].items() if s == "in_doubt"}
        assert in_doubt == in_flight
        received = Counter(r.json["email"] for r in betatel.requests)
        assert all(received[a] == 1 for a in set(addresses) - in_doubt), received
        assert all(received[a] <= 1 for a in in_doubt)


def test_benchmark_runs() -> None:
    """A smoke test of bench/admin_bulk.py with tiny numbers; it times nothing."""
    options = ["--n", "20", "--inline", "6", "--latency", "0.01"]
    result = subprocess.run(
        [sys.executable, "-m", "bench.admin_bulk", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "queued: action response for 20 users" in result.stdout
    assert re.search(r"queued: tasks in the database +1\n", result.stdout)
    assert "inline: 6 sends, concurrency 8" in result.stdout
    assert "(6 sent, 6 requests)" in result.stdout
