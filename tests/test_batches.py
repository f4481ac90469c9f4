"""Bulk sends as batches: a ledger per address, resuming after a real SIGKILL
without sending anything twice, and Betatel's 429 pausing the whole batch."""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from betatel_reset import batches, resuming
from betatel_reset.backends import locmem
from betatel_reset.choices import AddressState, BatchState, Outcome, Source
from betatel_reset.models import BatchAddress, ResendAttempt, ResendBatch
from betatel_reset.testing import Behaviour, FakeBetatelServer
from tests.support.fake_betatel import FAKE_BETATEL_TOKEN

from .conftest import grant
from .support.process_barrier import ProcessBarrier
from .support.real_services import ROOT, in_django, require_services, scratch_database

User = get_user_model()

ADDRESSES = [f"user{n:02}@example.com" for n in range(20)]
CONCURRENCY = 4
#: BULK_STALE_AFTER of the site processes, in seconds.
STALE_AFTER = 6


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[FakeBetatelServer, dict[str, str]]]:
    """A fake Betatel and the environment of a site process using it, with a
    migrated SQLite file that several processes share."""
    with FakeBetatelServer(token=FAKE_BETATEL_TOKEN) as betatel:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.support.settings.tasks_db",
            "BETATEL_TEST_DB": str(tmp_path / "db.sqlite3"),
            "BETATEL_TEST_API_URL": betatel.url,
            "BETATEL_TEST_STALE_AFTER": str(STALE_AFTER),
            "PYTHONPATH": str(ROOT),
        }
        in_django(
            "from django.core.management import call_command\n"
            "call_command('migrate', verbosity=0)\nprint(1)",
            env,
        )
        yield betatel, env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "django", "betatel_resend", *args]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


LEDGER = """
from betatel_reset.models import BatchAddress, ResendBatch, ResendAttempt
b = ResendBatch.objects.get()
print(json.dumps({
    "state": b.state,
    "resume_after": b.resume_after.timestamp() if b.resume_after else None,
    "addresses": {a.email: a.state for a in BatchAddress.objects.all()},
    "audited": list(ResendAttempt.objects.values_list("email", flat=True)),
}))
"""


def test_a_killed_command_resumes_without_sending_twice(
    site: tuple[FakeBetatelServer, dict[str, str]],
) -> None:
    """SIGKILL ``betatel_resend`` while requests are in flight, then
    ``--resume``: every address reaches Betatel exactly once, except those
    reported in doubt (at most the concurrency), which are not sent again."""
    betatel, env = site
    betatel.latency = 0.3
    sender = subprocess.Popen(
        command("--concurrency", str(CONCURRENCY), *ADDRESSES),
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while len(betatel.requests) < 2 * CONCURRENCY + 1 and sender.poll() is None:
            assert time.monotonic() < deadline, "the command never got going"
            time.sleep(0.01)
        sender.send_signal(signal.SIGKILL)
    finally:
        sender.kill()
        sender.wait(timeout=10)
    killed_at = time.monotonic()
    assert sender.returncode == -signal.SIGKILL

    # Its heartbeat is fresh: another process might still be sending it.
    refused = run(env, "--resume")
    assert refused.returncode == 2, refused.stderr
    assert "still being sent" in refused.stderr

    ledger = in_django(LEDGER, env)
    in_flight = {a for a, state in ledger["addresses"].items() if state == "in_flight"}
    # Killed between the audit row and the ledger: the audit trail knows. Each
    # thread may also hold the outcome of its last send, written with its next
    # claim: audited, so known too.
    known = in_flight & set(ledger["audited"])
    assert 1 <= len(in_flight - known) <= CONCURRENCY
    assert len(in_flight) <= 2 * CONCURRENCY

    time.sleep(max(0.0, killed_at + STALE_AFTER + 0.2 - time.monotonic()))
    betatel.latency = 0
    resumed = run(env, "--resume", "--concurrency", str(CONCURRENCY))
    assert resumed.returncode == 1, resumed.stderr  # addresses in doubt
    reported = {
        line.removeprefix("in doubt: ")
        for line in resumed.stderr.splitlines()
        if line.startswith("in doubt: ")
    }
    assert reported == in_flight - known
    assert reported  # the kill came while requests were in flight
    assert "--resend-in-doubt" in resumed.stderr

    received = Counter(r.json["email"] for r in betatel.requests)
    assert set(received) | reported == set(ADDRESSES)
    assert all(received[a] == 1 for a in set(ADDRESSES) - reported), received
    assert all(received[a] <= 1 for a in reported)
    ledger = in_django(LEDGER, env)
    assert ledger["state"] == "finished"
    assert {a for a, s in ledger["addresses"].items() if s == "in_doubt"} == reported


def test_betatel_429_pauses_the_batch_after_one_wave(
    site: tuple[FakeBetatelServer, dict[str, str]],
) -> None:
    """Betatel answers every request ``429 Retry-After: 120``: no more than one
    request per thread leaves, and the batch says when it may resume."""
    betatel, env = site
    betatel.latency = 0.2
    betatel.always(Behaviour.status(429, retry_after=120))
    started = time.time()

    result = run(env, "--concurrency", str(CONCURRENCY), *ADDRESSES)

    assert result.returncode == 3, result.stderr
    assert len(betatel.requests) <= CONCURRENCY
    assert "paused until" in result.stderr
    assert "--resume" in result.stderr
    ledger = in_django(LEDGER, env)
    assert ledger["state"] == "paused"
    assert started + 119 <= ledger["resume_after"] <= time.time() + 121
    assert set(ledger["addresses"].values()) == {"pending"}  # nothing was sent

    # Not before Retry-After has passed.
    early = run(env, "--resume")
    assert early.returncode == 2
    assert "paused by Betatel's 429 until" in early.stderr
    assert len(betatel.requests) <= CONCURRENCY


# In-process: the ledger and resuming -------------------------------------------------


def resume(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("betatel_resend", "--resume", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def stopped_batch() -> ResendBatch:
    """A batch whose process died: one address sent, one in flight, two to go."""
    batch = batches.create_batch(
        ["a@example.com", "b@example.com", "c@example.com", "d@example.com"],
        source=Source.COMMAND,
    )
    rows = list(BatchAddress.objects.filter(batch=batch))
    rows[0].state, rows[0].outcome = AddressState.DONE, Outcome.SENT
    rows[1].state = AddressState.IN_FLIGHT
    BatchAddress.objects.bulk_update(rows[:2], ["state", "outcome"])
    stale = timezone.now() - datetime.timedelta(minutes=5)
    ResendBatch.objects.filter(pk=batch.pk).update(heartbeat_at=stale)
    return batch


@pytest.mark.django_db
def test_resume_skips_what_was_sent_and_what_is_in_doubt(locmem_backend: None) -> None:
    batch = stopped_batch()
    with pytest.raises(CommandError) as raised:
        resume(str(batch.pk))
    assert raised.value.returncode == 1
    assert [r.email for r in locmem.outbox] == ["c@example.com", "d@example.com"]
    batch.refresh_from_db()
    assert batch.state == BatchState.FINISHED
    assert batches.describe(batch) == "3 sent, 0 failed, 1 in doubt, 0 remaining."


@pytest.mark.django_db
def test_resend_in_doubt_sends_them_too(locmem_backend: None) -> None:
    stopped_batch()
    out, err = resume("--resend-in-doubt")
    assert [r.email for r in locmem.outbox] == ["b@example.com", "c@example.com", "d@example.com"]
    assert "in doubt: b@example.com" in err
    assert out.strip().endswith("4 sent, 0 failed, 0 in doubt, 0 remaining.")


@pytest.mark.django_db
def test_nothing_to_resume() -> None:
    with pytest.raises(CommandError, match="No unfinished batch") as raised:
        resume()
    assert raised.value.returncode == 2


@pytest.mark.django_db
def test_an_address_claimed_elsewhere_is_not_sent(locmem_backend: None) -> None:
    """The in-flight mark is the lock: a row another process claimed between
    the read and the send is skipped."""
    batch = batches.create_batch(["a@example.com", "b@example.com"], source=Source.API)
    claimed = BatchAddress.objects.get(email="a@example.com")
    with connection.cursor() as cursor:
        assert batches._claim(cursor, claimed.pk)
        assert not batches._claim(cursor, claimed.pk)
    BatchAddress.objects.filter(pk=claimed.pk).update(state=AddressState.PENDING)
    original = batches._claim

    def claim_after_someone_else(
        cursor: CursorWrapper, address_id: int, done: tuple[int, Outcome] | None = None
    ) -> bool:
        if address_id == claimed.pk:
            original(cursor, address_id)  # another worker wins the race
        return original(cursor, address_id, done)

    batches._claim = claim_after_someone_else  # type: ignore[assignment]
    try:
        batches.run_batch(batch)
    finally:
        batches._claim = original  # type: ignore[assignment]
    assert [r.email for r in locmem.outbox] == ["b@example.com"]
    assert ResendAttempt.objects.count() == 1


def ledger_updates(batch: ResendBatch) -> int:
    """How many ``UPDATE`` statements of the address ledger a run of ``batch`` makes."""
    table = connection.ops.quote_name(BatchAddress._meta.db_table)
    with CaptureQueriesContext(connection) as queries:
        batches.run_batch(batch)
    return sum(q["sql"].startswith(f"UPDATE {table}") for q in queries.captured_queries)


@pytest.mark.django_db
def test_an_outcome_is_written_with_the_next_claim(locmem_backend: None) -> None:
    """One statement of the ledger per address: its claim, which also marks the
    thread's previous address done; the last outcome is written on its own."""
    batch = batches.create_batch(
        ["a@example.com", "b@example.com", "c@example.com"], source=Source.API
    )
    assert ledger_updates(batch) == 3 + 1
    rows = BatchAddress.objects.filter(batch=batch).values_list("state", "outcome")
    assert set(rows) == {(AddressState.DONE, Outcome.SENT)}


@pytest.mark.django_db
def test_a_paced_sender_writes_each_outcome_before_waiting(settings: Any) -> None:
    """Under ``BULK_RATE`` a sender may wait for its slot: no outcome waits
    with it, so each address is marked done by a statement of its own."""
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "BACKEND": "locmem", "BULK_RATE": "1000/s"}
    batch = batches.create_batch(
        ["a@example.com", "b@example.com", "c@example.com"], source=Source.API
    )
    assert ledger_updates(batch) == 3 + 3


@pytest.mark.django_db
def test_a_stopped_sender_writes_its_last_outcome(
    locmem_backend: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled from the admin after two sends: the second one's outcome,
    held for the next claim, is written when the sender stops."""
    monkeypatch.setattr(batches, "CONTROL_EVERY", 0.0)  # look at the batch row before each send
    batch = batches.create_batch([f"u{n}@example.com" for n in range(5)], source=Source.API)

    def cancel_after_two(email: str, outcome: Outcome) -> None:
        if len(locmem.outbox) == 2:
            batches.set_state(batch, BatchState.CANCELLED)

    batches.run_batch(batch, on_result=cancel_after_two)

    states = dict(BatchAddress.objects.filter(batch=batch).values_list("email", "state"))
    assert states == {
        "u0@example.com": AddressState.DONE,
        "u1@example.com": AddressState.DONE,
        "u2@example.com": AddressState.PENDING,
        "u3@example.com": AddressState.PENDING,
        "u4@example.com": AddressState.PENDING,
    }


@pytest.mark.django_db
def test_prune_deletes_old_batches_that_have_ended() -> None:
    old = timezone.now() - datetime.timedelta(days=100)
    ended, unfinished, recent = (
        batches.create_batch(["a@example.com"], source=Source.COMMAND) for _ in range(3)
    )
    ResendBatch.objects.filter(pk__in=[ended.pk, recent.pk]).update(state=BatchState.FINISHED)
    ResendBatch.objects.filter(pk__in=[ended.pk, unfinished.pk]).update(created_at=old)
    out = StringIO()
    call_command("betatel_prune", "--older-than", "90d", stdout=out)
    assert set(ResendBatch.objects.values_list("pk", flat=True)) == {unfinished.pk, recent.pk}
    assert BatchAddress.objects.count() == 2
    assert "Deleted 1 ended bulk sends older than 90d." in out.getvalue()


@pytest.mark.django_db
def test_the_audit_trail_settles_what_it_knows(locmem_backend: None) -> None:
    """A process killed after the audit row, before the ledger: the send's
    outcome is known, so the address is neither in doubt nor sent again. A
    429 it recorded means nothing was sent: that address is sent on resume."""
    batch = stopped_batch()  # b@ in flight
    rows = BatchAddress.objects.filter(batch=batch)
    rows.filter(email="c@example.com").update(state=AddressState.IN_FLIGHT)
    for email, outcome in (
        ("b@example.com", Outcome.SENT),
        ("c@example.com", "upstream_rate_limited"),
    ):
        ResendAttempt.objects.record(email=email, source=Source.COMMAND, outcome=outcome)
    out, err = resume()
    assert "in doubt" not in err
    assert [r.email for r in locmem.outbox] == ["c@example.com", "d@example.com"]
    assert out.strip().endswith("4 sent, 0 failed, 0 in doubt, 0 remaining.")


# The admin -----------------------------------------------------------------------------


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("root", "root@staff.example", "pw"))
    return client


def act(client: Client, action: str, batch: ResendBatch) -> str:
    response = client.post(
        reverse("admin:betatel_reset_resendbatch_changelist"),
        {"action": action, "_selected_action": [batch.pk]},
        follow=True,
    )
    assert response.status_code == 200
    return " ".join(str(m) for m in get_messages(response.wsgi_request))


@pytest.mark.django_db
def test_the_admin_lists_batches_with_an_accessible_progress_bar(admin_client: Client) -> None:
    batch = stopped_batch()
    page = admin_client.get(reverse("admin:betatel_reset_resendbatch_changelist"))
    html = page.content.decode()
    summary = "1 sent, 0 failed, 1 in doubt, 2 remaining."
    assert f'<progress value="2" max="4" aria-label="{summary}">{summary}</progress>' in html
    detail = admin_client.get(
        reverse("admin:betatel_reset_resendbatch_change", args=[batch.pk])
    ).content.decode()
    audit = reverse("admin:betatel_reset_resendattempt_changelist")
    assert f'<a href="{audit}?outcome__exact=sent&amp;source__exact=command' in detail
    assert "Sent: 1</a>" in detail


@pytest.mark.django_db
def test_the_breakdown_links_to_the_batch_s_attempts(admin_client: Client) -> None:
    batch = stopped_batch()
    ResendAttempt.objects.record(email="a@example.com", source=Source.COMMAND, outcome="sent")
    detail = admin_client.get(reverse("admin:betatel_reset_resendbatch_change", args=[batch.pk]))
    link = re.search(r'<a href="([^"]+)">Sent: 1</a>', detail.content.decode())
    assert link is not None
    listing = admin_client.get(link.group(1).replace("&amp;", "&"))
    assert listing.status_code == 200
    assert list(listing.context["cl"].queryset.values_list("email", flat=True)) == [
        "a@example.com"
    ]


@pytest.mark.django_db
def test_pause_resume_and_cancel_from_the_admin(
    admin_client: Client, locmem_backend: None
) -> None:
    batch = stopped_batch()
    ResendBatch.objects.filter(pk=batch.pk).update(heartbeat_at=timezone.now())
    # Still running (fresh progress): resuming is refused until it is paused.
    assert "cannot be resumed now" in act(admin_client, "resume_batches", batch)
    assert "Paused 1 bulk send" in act(admin_client, "pause_batches", batch)
    batch.refresh_from_db()
    assert batch.state == BatchState.PAUSED

    message = act(admin_client, "resume_batches", batch)

    assert message == f"Bulk send #{batch.pk} resumed: 3 sent, 0 failed, 1 in doubt, 0 remaining."
    assert [r.email for r in locmem.outbox] == ["c@example.com", "d@example.com"]
    batch.refresh_from_db()
    assert batch.state == BatchState.FINISHED
    assert "Cancelled 0 bulk sends" in act(admin_client, "cancel_batches", batch)


@pytest.mark.django_db
def test_a_cancelled_batch_stops_its_sender(locmem_backend: None) -> None:
    batch = batches.create_batch([f"u{n}@example.com" for n in range(5)], source=Source.API)
    assert batches.set_state(batch, BatchState.CANCELLED)
    batches.run_batch(batch)
    assert locmem.outbox == []
    with pytest.raises(resuming.NotResumable):
        resuming.take_over(ResendBatch.objects.get(pk=batch.pk))


@pytest.mark.django_db
def test_batch_actions_need_the_resend_permission(client: Client) -> None:
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    grant(staff, "betatel_reset.view_resendbatch")
    client.force_login(staff)
    batch = stopped_batch()
    page = client.get(reverse("admin:betatel_reset_resendbatch_changelist"))
    assert page.status_code == 200
    assert "resume_batches" not in page.content.decode()
    act(client, "cancel_batches", batch)
    batch.refresh_from_db()
    assert batch.state == BatchState.RUNNING


def test_two_workers_share_bulk_rate() -> None:
    """Two worker processes, released together, each with more to send than
    the rate allows: together they never make more than ``BULK_RATE``
    requests in any second, counted where they arrive."""
    require_services()
    # 200 ms between sends: room for a loaded machine's jitter between the
    # moment a send is let through and the moment it reaches the server.
    limit, each = 5, 12
    with (
        scratch_database() as env,
        FakeBetatelServer(token="fake-token-for-tests") as betatel,
        ProcessBarrier() as barrier,
    ):
        env = {
            **env,
            "BETATEL_IT_API_URL": betatel.url,
            "BETATEL_IT_BULK_RATE": f"{limit}/s",
            "BETATEL_IT_BARRIER": barrier.address,
        }
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.support.bulk_rate_worker", name, str(each)],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("one", "two")
        ]
        try:
            barrier.release(workers)
            outputs = [worker.communicate(timeout=60) for worker in workers]
        finally:
            for worker in workers:
                worker.kill()
                worker.wait(timeout=10)
        assert [w.returncode for w in workers] == [0, 0], [err[-2000:] for _, err in outputs]
        assert [json.loads(out) for out, _ in outputs] == [{"sent": each}, {"sent": each}]
        per_second = Counter(int(r.received_at) for r in betatel.requests)
        assert sum(per_second.values()) == 2 * each
        assert max(per_second.values()) <= limit, sorted(per_second.items())
        # Both workers sent in the busiest seconds: the limit is shared, not per worker.
        busiest = max(per_second, key=lambda s: per_second[s])
        senders = {
            r.json["email"].split("-")[0]
            for r in betatel.requests
            if int(r.received_at) == busiest
        }
        assert senders == {"one", "two"}


RQ_LEDGER = """
import django_rq
from betatel_reset.models import BatchAddress, ResendBatch
batch = ResendBatch.objects.order_by("-id").first()
print(json.dumps({
    "batch": batch.state if batch else None,
    "addresses": {a.email: a.state for a in BatchAddress.objects.all()},
}))
"""


def test_two_rq_workers_one_killed_finish_the_batch_once() -> None:
    """django-tasks-rq on the real Redis: two RQ workers drain one batch; one
    is SIGKILLed mid-chunk. The other takes over its chunk once it has made
    no progress for BULK_STALE_AFTER: every address reaches Betatel once,
    except those in flight at the kill (in doubt, at most the concurrency)."""
    require_services()
    pytest.importorskip("django_tasks_rq")
    addresses = [f"rq{n:02}@example.com" for n in range(30)]
    with (
        scratch_database() as env,
        FakeBetatelServer(token="fake-token-for-tests", latency=0.3) as betatel,
    ):
        env = {
            **env,
            "DJANGO_SETTINGS_MODULE": "tests.support.settings.tasks_rq",
            "BETATEL_IT_API_URL": betatel.url,
            "BETATEL_IT_STALE_AFTER": "1",
        }
        queued = in_django(
            "import django_rq\n"
            "from betatel_reset.tasks import enqueue_in_chunks\n"
            "django_rq.get_queue('default').empty()\n"
            f"print(enqueue_in_chunks({addresses!r}, source='task', actor=None).tasks)\n",
            env,
        )
        assert queued == 10
        worker = [
            sys.executable, "-m", "django", "rqworker", "default",
            "--job-class", "django_tasks_rq.Job",
            "--worker-class", "rq.worker.SimpleWorker",  # the job runs in the process killed
        ]  # fmt: skip
        doomed, survivor = (
            subprocess.Popen(
                [*worker, "--name", f"betatel-{name}-{os.getpid()}"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name in ("doomed", "survivor")
        )
        try:
            deadline = time.monotonic() + 60
            while len(betatel.requests) < 8:
                assert time.monotonic() < deadline, "the workers never got going"
                time.sleep(0.01)
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=10)
            while (state := in_django(RQ_LEDGER, env))["batch"] != "finished":
                assert time.monotonic() < deadline, state
                time.sleep(0.5)
        finally:
            for proc in (doomed, survivor):
                proc.kill()
                proc.wait(timeout=10)
        in_doubt = {a for a, s in state["addresses"].items() if s == "in_doubt"}
        assert len(in_doubt) <= 2  # TASK_CONCURRENCY of the killed worker
        received = Counter(r.json["email"] for r in betatel.requests)
        assert all(received[a] == 1 for a in set(addresses) - in_doubt), received
        assert all(received[a] <= 1 for a in in_doubt)


def test_a_429_in_one_worker_pauses_the_others_through_the_cache() -> None:
    """Two pacers of one batch (as in two processes sharing Redis): one's
    pause reaches the other through the cache; another batch is not paused."""
    from betatel_reset.pacing import BatchPacer

    one, other, elsewhere = BatchPacer(7), BatchPacer(7), BatchPacer(8)
    other.delay()  # read the cache once before the pause, as a running worker has
    time.sleep(BatchPacer.READ_EVERY)
    one.pause(30)
    assert 29 < other.delay() <= 30
    assert elsewhere.delay() <= 0
