"""Does the page's answer time tell known accounts from unknown ones?

A real server (gunicorn, two sync workers, the site on a SQLite file), a fake
Betatel that takes 300 ms to "send" before its 200 and answers an unknown
address's 404 at once, and, for queued delivery, django-tasks-db workers.
Known and unknown addresses are posted alternately by two clients; a
two-sample Kolmogorov-Smirnov test compares the two sets of answer times.
Inline delivery must be caught (so the test can fail); queued delivery and
inline delivery padded by RESPONSE_FLOOR must not be.

Also against real processes: a worker SIGKILLed between queuing and sending.
"""

from __future__ import annotations

import contextlib
import math
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from bench.harness import child_env, csrf_token, stop_processes
from betatel_reset.testing import Behaviour, FakeBetatelServer
from tests.support.fake_betatel import FAKE_BETATEL_TOKEN
from tests.support.queued_site import PAGE, queued_site
from tests.support.real_services import ROOT, in_django

ROUNDS = 50  # per client: each posts ROUNDS known and ROUNDS unknown addresses
CLIENTS = 2
SEND_TIME = 0.3
FLOOR = 0.5
WORKERS = 3


def ks_2samp(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """The two-sample Kolmogorov-Smirnov statistic and its asymptotic p-value
    (Numerical Recipes' ``kstwo``/``probks``, as scipy's ``mode="asymp"``)."""
    xs, ys = sorted(a), sorted(b)
    n, m = len(xs), len(ys)
    i = j = 0
    d = 0.0
    while i < n and j < m:
        value = min(xs[i], ys[j])
        while i < n and xs[i] <= value:
            i += 1
        while j < m and ys[j] <= value:
            j += 1
        d = max(d, abs(i / n - j / m))
    en = math.sqrt(n * m / (n + m))
    return d, kolmogorov_q((en + 0.12 + 0.11 / en) * d)


def kolmogorov_q(lam: float) -> float:
    """P(K > lam) for Kolmogorov's distribution K."""
    if lam < 1e-3:
        return 1.0
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return min(1.0, max(0.0, p))


def test_ks_2samp_tells_apart_what_differs_and_not_what_does_not() -> None:
    same = [k / 100 for k in range(100)]
    assert ks_2samp(same, [v + 0.001 for v in same])[1] > 0.9
    assert ks_2samp(same, [v + 0.3 for v in same])[1] < 1e-3
    assert ks_2samp(range(1, 11), range(6, 16))[0] == 0.5
    # The critical values every table gives: 1.36 for 5 %, 1.63 for 1 %.
    assert kolmogorov_q(1.36) == pytest.approx(0.05, abs=0.001)
    assert kolmogorov_q(1.63) == pytest.approx(0.01, abs=0.001)


@contextlib.contextmanager
def workers(env: dict[str, str], count: int) -> Iterator[None]:
    argv = [sys.executable, "-m", "django", "db_worker", "--no-startup-delay", "--no-reload"]
    procs = [
        subprocess.Popen(
            [*argv, "--interval", "0.1"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        yield
    finally:
        stop_processes(procs)


def post_alternately(url: str, client: int) -> dict[str, list[float]]:
    """One client: ROUNDS known and ROUNDS unknown addresses, alternately, the
    order flipped every round; each POST's time to its answer."""
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    with requests.Session() as session:
        token = csrf_token(session, url + PAGE)
        for number in range(ROUNDS):
            kinds = ("known", "unknown") if (number + client) % 2 else ("unknown", "known")
            for kind in kinds:
                address = f"{kind}-{client}-{number}@example.com"
                started = time.perf_counter()
                response = session.post(
                    url + PAGE,
                    {"email": address, "csrfmiddlewaretoken": token},
                    headers={"Referer": url + PAGE},
                    allow_redirects=False,
                    timeout=30,
                )
                times[kind].append(time.perf_counter() - started)
                assert response.status_code == 302, response.text[-500:]
    return times


UNRESOLVED = """
from betatel_reset.models import ResendAttempt
print(json.dumps(ResendAttempt.objects.filter(outcome="queued").count()))
"""


@pytest.mark.parametrize(
    ("delivery", "floor", "tells_apart"),
    [
        pytest.param("queued", "", False, id="queued"),
        pytest.param("inline", "", True, id="inline"),
        pytest.param("inline", str(FLOOR), False, id="inline-with-a-floor"),
    ],
)
def test_answer_times_for_known_and_unknown_accounts(
    delivery: str, floor: str, tells_apart: bool
) -> None:
    unknown = [f"unknown-{c}-{n}@example.com" for c in range(CLIENTS) for n in range(ROUNDS)]
    with (
        FakeBetatelServer(
            token=FAKE_BETATEL_TOKEN, unknown_emails=unknown, send_time=SEND_TIME
        ) as betatel,
        queued_site(betatel.url, DELIVERY=delivery, RESPONSE_FLOOR=floor) as site,
    ):
        with (
            workers(site.env, WORKERS if delivery == "queued" else 0),
            ThreadPoolExecutor(CLIENTS) as pool,
        ):
            urls = [site.served.url] * CLIENTS
            results = list(pool.map(post_alternately, urls, range(CLIENTS)))
            posted = time.monotonic()
            # Every send reaches Betatel within a bounded time.
            while len(betatel.requests) < 2 * CLIENTS * ROUNDS:
                assert time.monotonic() - posted < 60, f"{len(betatel.requests)} sends arrived"
                time.sleep(0.1)
        assert in_django(UNRESOLVED, site.env) == 0  # every queued row has its outcome

    known = [t for r in results for t in r["known"]]
    unknown_times = [t for r in results for t in r["unknown"]]
    statistic, p = ks_2samp(known, unknown_times)
    summary = (
        f"{delivery} floor={floor or 'none'}: D={statistic:.3f} p={p:.2g}, median known "
        f"{sorted(known)[len(known) // 2] * 1000:.0f} ms, unknown "
        f"{sorted(unknown_times)[len(unknown_times) // 2] * 1000:.0f} ms"
    )
    print(summary)  # shown with -s
    if tells_apart:
        assert p < 0.01, summary
    else:
        assert p > 0.01, summary


POST_TWO = """
from django.core.management import call_command
from django.test import Client
call_command("migrate", verbosity=0)
client = Client()
for address in ("slow@example.com", "next@example.com"):
    assert client.post("/reset-password/resend/", {"email": address}).status_code == 302
print(0)
"""
STATE = """
from django_tasks_db.models import DBTaskResult
from betatel_reset.models import ResendAttempt
print(json.dumps({
    "rows": sorted(ResendAttempt.objects.values_list("email", "outcome")),
    "tasks": sorted(t.status for t in DBTaskResult.objects.all()),
}))
"""


def test_a_worker_killed_between_queue_and_send_leaves_the_row_visibly_queued(
    tmp_path: Path,
) -> None:
    """SIGKILL the worker while Betatel is answering the first send: that row
    stays "queued" (the admin's stale filter shows it), its task RUNNING; the
    next worker sends the one still waiting and fills in its row."""
    with FakeBetatelServer(token=FAKE_BETATEL_TOKEN) as betatel:
        betatel.behave(Behaviour.slow(30))
        env = child_env(
            DJANGO_SETTINGS_MODULE="tests.support.settings.queued",
            BETATEL_TEST_DB=str(tmp_path / "db.sqlite3"),
            BETATEL_TEST_API_URL=betatel.url,
        )
        in_django(POST_TWO, env)
        assert betatel.requests == []
        assert in_django(STATE, env)["rows"] == [
            ["next@example.com", "queued"],
            ["slow@example.com", "queued"],
        ]

        argv = [sys.executable, "-m", "django", "db_worker", "--no-startup-delay", "--no-reload"]
        worker = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            started = time.monotonic()
            while not betatel.requests:
                assert worker.poll() is None
                assert time.monotonic() - started < 30
                time.sleep(0.01)
            worker.send_signal(signal.SIGKILL)
        finally:
            worker.kill()
            worker.wait(timeout=10)
        assert in_django(STATE, env) == {
            "rows": [["next@example.com", "queued"], ["slow@example.com", "queued"]],
            "tasks": ["READY", "RUNNING"],
        }

        subprocess.run(
            [*argv, "--batch"], env=env, cwd=ROOT, capture_output=True, timeout=60, check=True
        )
        assert in_django(STATE, env) == {
            "rows": [["next@example.com", "sent"], ["slow@example.com", "queued"]],
            "tasks": ["RUNNING", "SUCCESSFUL"],
        }


REFUSED = """
from django.core.management import call_command
from django.test import Client
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult
from betatel_reset.models import ResendAttempt
call_command("migrate", verbosity=0)
real_enqueue = DatabaseBackend.enqueue

def enqueue_then_fail(self, task, args, kwargs):
    real_enqueue(self, task, args, kwargs)  # the task row is written, then:
    raise ConnectionError("the queue broke off")

DatabaseBackend.enqueue = enqueue_then_fail
status = Client().post("/reset-password/resend/", {"email": "ada@example.com"}).status_code
print(json.dumps({
    "status": status,
    "rows": list(ResendAttempt.objects.values_list("outcome", flat=True)),
    "tasks": DBTaskResult.objects.count(),
}))
"""


def test_with_django_tasks_db_the_row_and_its_task_commit_together(tmp_path: Path) -> None:
    """A queue in the database that fails mid-enqueue keeps neither the queued
    row nor a task: the page answers 503 and the audit trail says failed."""
    env = child_env(
        DJANGO_SETTINGS_MODULE="tests.support.settings.queued",
        BETATEL_TEST_DB=str(tmp_path / "db.sqlite3"),
    )
    assert in_django(REFUSED, env) == {"status": 503, "rows": ["failed"], "tasks": 0}
