"""Rate limits and the audit trail on the real PostgreSQL and Redis, across processes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .support.process_barrier import ProcessBarrier
from .support.real_services import ROOT, in_django, require_services, scratch_database

pytestmark = pytest.mark.services

PROCESSES = 4
THREADS = 12
LIMIT = 5


def test_concurrent_processes_admit_exactly_the_limit() -> None:
    require_services()
    with scratch_database() as env, ProcessBarrier() as barrier:
        env = {
            **env,
            "BETATEL_IT_BARRIER": barrier.address,
            "BETATEL_IT_RATE_LIMIT_EMAIL": f"{LIMIT}/h",
        }
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.rate_limit_worker",
                    "target@example.com",
                    str(THREADS),
                ],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(PROCESSES)
        ]
        # Every process has set up Django and opened its connections: all
        # PROCESSES x THREADS resends start together.
        barrier.release(procs)
        totals = {"sent": 0, "limited": 0}
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0
            for key, value in json.loads(out).items():
                totals[key] += value

        assert totals == {"sent": LIMIT, "limited": PROCESSES * THREADS - LIMIT}
        rows = in_django(
            "from django.db.models import Count\n"
            "from betatel_reset.models import ResendAttempt as A\n"
            "print(json.dumps(dict(A.objects.values_list('outcome')"
            ".annotate(n=Count('id')).values_list('outcome', 'n'))))",
            env,
        )
        assert rows == {
            "sent": LIMIT,
            "rate_limited": PROCESSES * THREADS - LIMIT,
        }


ASYNC_COMMIT_PROBE = """
from unittest import mock
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from betatel_reset import models
from betatel_reset.models import ASYNC_COMMIT, ResendAttempt as A

def write(email):
    with CaptureQueriesContext(connection) as queries:
        A.objects.record(email=email, source="web", outcome="sent")
    statements = [q["sql"] for q in queries.captured_queries]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        after = cursor.fetchone()[0]
    return {"async": [sql.startswith(ASYNC_COMMIT) for sql in statements], "after": after}

with connection.cursor() as cursor:
    cursor.execute(ASYNC_COMMIT + "SELECT current_setting('synchronous_commit')")
    cursor.nextset()  # past the SET's own result
    seen = {"in_effect": cursor.fetchone()[0]}
seen["autocommit"] = write("a@example.com")
with transaction.atomic():
    seen["atomic"] = write("b@example.com")
with override_settings(BETATEL_RESET={"AUDIT_ASYNC_COMMIT": False}):
    seen["off"] = write("c@example.com")
with transaction.atomic():  # opened for the row alone, as a queued resend does
    row_id = A.objects.record(
        returning=True, own_transaction=True, email="g@example.com", outcome="queued"
    )
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        seen["own_transaction"] = {"inside": cursor.fetchone()[0]}
seen["own_transaction"]["id"] = row_id == A.objects.get(email="g@example.com").pk
with connection.cursor() as cursor:
    cursor.execute("SHOW synchronous_commit")
    seen["own_transaction"]["after"] = cursor.fetchone()[0]

connection.close()
connection.settings_dict["OPTIONS"]["server_side_binding"] = True
seen["server_side"] = write("d@example.com")
with mock.patch.object(models, "_binds_client_side", return_value=True):
    seen["refused"] = write("e@example.com")
    seen["after_refusal"] = write("f@example.com")
seen["rows"] = sorted(A.objects.values_list("email", flat=True))
print(json.dumps(seen))
"""


def test_audit_rows_commit_asynchronously_only_on_their_own() -> None:
    """On PostgreSQL an audit row written in autocommit mode does not wait for
    the disk; the setting stays local to that statement, a transaction of the
    site's own keeps its durability, and a connection that binds parameters
    server-side (which cannot run two commands at once) loses no row."""
    require_services()
    with scratch_database() as env:
        seen = in_django(ASYNC_COMMIT_PROBE, env)
    assert seen["in_effect"] == "off"
    assert seen["autocommit"] == {"async": [True], "after": "on"}
    assert seen["atomic"] == {"async": [False], "after": "on"}
    assert seen["off"] == {"async": [False], "after": "on"}
    # A transaction opened for the row (and a queued resend's task) commits
    # asynchronously as a whole, and the row's id comes back past the SET.
    assert seen["own_transaction"] == {"inside": "off", "id": True, "after": "on"}
    assert seen["server_side"] == {"async": [False], "after": "on"}
    # Told it could, it tries once, is refused, writes the row plainly, and
    # does not try again on that database.
    assert seen["refused"]["async"] == [True, False]
    assert seen["after_refusal"]["async"] == [False]
    assert seen["rows"] == [f"{c}@example.com" for c in "abcdefg"]


QUEUED_COMMIT_PROBE = """
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult
from betatel_reset.delivery import queue_reset_email
from betatel_reset.models import ASYNC_COMMIT, ResendAttempt as A

call_command("migrate", verbosity=0)

def queue(email):
    with CaptureQueriesContext(connection) as queries:
        queue_reset_email(email)
    inserts = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
    return [sql.startswith(ASYNC_COMMIT) for sql in inserts]

seen = {"own": queue("a@example.com")}
with transaction.atomic():  # the site's own, as with ATOMIC_REQUESTS
    seen["site"] = queue("b@example.com")
seen["rows"] = list(A.objects.order_by("id").values_list("id", "outcome"))
tasks = DBTaskResult.objects.order_by("enqueued_at")
seen["tasks"] = [task.args_kwargs["kwargs"]["row_id"] for task in tasks]
print(json.dumps(seen))
"""


def test_a_queued_resend_and_its_task_commit_together_asynchronously() -> None:
    """On PostgreSQL with django-tasks-db, the queued audit row and its task
    are written in one transaction that commits without waiting for the disk
    (``AUDIT_ASYNC_COMMIT``); inside a transaction of the site's own they
    commit with it, durably. Each task carries its own audit row's id."""
    require_services()
    with scratch_database() as env:
        seen = in_django(
            QUEUED_COMMIT_PROBE, {**env, "DJANGO_SETTINGS_MODULE": "tests.support.settings.queued"}
        )
    assert seen["own"] == [True, False]  # the audit row carries the SET, then the task
    assert seen["site"] == [False, False]
    assert [outcome for _, outcome in seen["rows"]] == ["queued", "queued"]
    assert seen["tasks"] == [row_id for row_id, _ in seen["rows"]]
