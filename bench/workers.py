"""Benchmark 9: bulk batches drained by 1, 2 and 4 ``db_worker`` processes, against
the ideal ``N x per-request time / (workers x TASK_CONCURRENCY)``; ``BULK_RATE``
counted where the requests arrive; each worker's peak memory at two sizes.

The batch is enqueued in this process (``enqueue_in_chunks``) on a scratch
PostgreSQL database, then the workers start together. The cache is Redis,
shared by the workers as ``BULK_RATE`` needs. The fake Betatel runs in this
process over plain HTTP and answers each send after ``send_time``.
docs/benchmarks.md describes the method.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

from bench.harness import (
    PYTHON,
    ROOT,
    bench_site,
    child_env,
    cpu_seconds,
    machine_busy_seconds,
    median,
    site_in_process,
    stop_processes,
)
from bench.report import arguments, finish, met, table
from betatel_reset.testing import FakeBetatelServer

TOKEN = "bench-token"  # bench.site_settings'
REDIS = "redis://127.0.0.1:6379/15"  # keys prefixed by the scratch database's name


class Plan(NamedTuple):
    per_request: float  # seconds the fake takes to "send the email"
    chunk_size: int  # TASK_CHUNK_SIZE
    sizes: list[tuple[int, int]]  # (workers, N), in order; memory compares two N per count
    rate: tuple[str, int, int]  # BULK_RATE, workers, N


PLAN = Plan(0.1, 250, [(w, n) for w in (1, 2, 4) for n in (1000, 10000)], ("40/s", 4, 1400))
SMOKE = Plan(0.01, 5, [(w, n) for w in (1, 2) for n in (20, 40)], ("20/s", 2, 50))


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident set (``VmHWM``), in KiB; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next(
        (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0
    )


class DatabaseCpu:
    """CPU spent by the PostgreSQL backends serving ``database``, those that have
    exited included up to the last :meth:`look` (a backend lives as long as its
    connection: a worker's sending threads reconnect for each chunk)."""

    def __init__(self, database: str) -> None:
        self.tag = f" {database} ".encode()
        self.seen: dict[int, float] = {}

    def look(self) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if command.startswith(b"postgres: ") and self.tag in command:
                self.seen[int(entry.name)] = cpu_seconds(int(entry.name))

    def seconds(self) -> float:
        return sum(self.seen.values())


def drain(
    fake: FakeBetatelServer, env: dict[str, str], name: str, workers: int, n: int, rate: str = ""
) -> dict[str, Any]:
    """Enqueue ``n`` addresses as one batch, start ``workers`` db_worker processes,
    wait for the batch to finish; what it took, checked: every address sent once."""
    from betatel_reset.choices import AddressState, BatchState, Outcome, Source
    from betatel_reset.conf import app_settings
    from betatel_reset.models import BatchAddress, ResendAttempt, ResendBatch
    from betatel_reset.tasks import enqueue_in_chunks

    fake.reset()
    prefix = f"{name}-{workers}w-{n}-"
    addresses = [f"{prefix}{i:06d}@example.com" for i in range(n)]
    started = time.time()
    queued = enqueue_in_chunks(addresses, source=Source.TASK, actor=None)
    enqueued = time.time() - started
    argv = [PYTHON, "-m", "django", "db_worker", "--no-startup-delay", "--no-reload"]
    worker_env = child_env(**env, BENCH_BULK_RATE=rate)
    database = DatabaseCpu(Path(env["BENCH_DATABASE_URL"]).name)
    database.look()
    before = database.seconds(), machine_busy_seconds(), time.monotonic()
    fake_cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    procs = [
        subprocess.Popen(
            argv, env=worker_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(workers)
    ]
    try:
        deadline = time.monotonic() + 60 + 3 * n * fake.send_time / workers
        batch = ResendBatch.objects.get(pk=queued.batch_id)
        while batch.state != BatchState.FINISHED:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"{prefix}: the batch is {batch.state}, not finished")
            time.sleep(0.2)
            database.look()
            batch.refresh_from_db()
        rss = [peak_rss_kb(p.pid) for p in procs]
        cpu = sum(cpu_seconds(p.pid) for p in procs)
        database.look()
        busy = (machine_busy_seconds() - before[1]) / (time.monotonic() - before[2])
    finally:
        stop_processes(procs, wait=30)  # db_worker stops after its task on SIGTERM
    fake_cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - fake_cpu
    arrivals = sorted(r.received_at for r in fake.requests)
    received = Counter(r.json["email"] for r in fake.requests)
    ledger = BatchAddress.objects.filter(
        batch_id=queued.batch_id, state=AddressState.DONE, outcome=Outcome.SENT
    ).count()
    audit = ResendAttempt.objects.filter(email__startswith=prefix, outcome=Outcome.SENT)
    once = (
        set(received) == set(addresses)
        and set(received.values()) == {1}
        and ledger == n
        and audit.count() == n
        and audit.values("email").distinct().count() == n
    )
    if not once:
        raise RuntimeError(
            f"{prefix}: {len(received)} addresses, {sum(received.values())} requests at the "
            f"fake; {ledger} sent in the ledger, {audit.count()} audit rows"
        )
    concurrency = app_settings.TASK_CONCURRENCY
    wall = batch.heartbeat_at.timestamp() - started  # set when it finished
    run = {
        "name": name,
        "workers": workers,
        "n": n,
        "rate": rate,
        "chunk_size": app_settings.TASK_CHUNK_SIZE,
        "concurrency": concurrency,
        "per_request_ms": fake.send_time * 1000,
        "enqueue_seconds": enqueued,
        "first_send_seconds": arrivals[0] - started,
        "wall_seconds": wall,
        "ideal_seconds": n * fake.send_time / (workers * concurrency),
        "peak_rss_kb": rss,
        "worker_cpu_ms_per_address": cpu * 1000 / n,
        "fake_cpu_ms_per_address": fake_cpu * 1000 / n,
        "database_cpu_ms_per_address": (database.seconds() - before[0]) * 1000 / n,
        "machine_busy_cores": busy,
        "arrivals": arrivals if rate else [],
        # Sends in each second after the first, to tell a steady pace from stalls.
        "sends_per_second": per_second(arrivals)["windows"],
    }
    print(
        f"  {prefix:24s} {run['wall_seconds']:.2f} s (ideal {run['ideal_seconds']:.2f} s), "
        f"peak RSS {max(rss) / 1024:.1f} MiB, worker CPU {run['worker_cpu_ms_per_address']:.2f} "
        "ms/address",
        flush=True,
    )
    return run


def per_second(arrivals: list[float]) -> dict[str, Any]:
    """Requests in each whole second (BULK_RATE's windows) between the first and the last,
    and the most in any 1-second span."""
    windows = Counter(int(t) for t in arrivals)
    full = [windows[s] for s in range(int(arrivals[0]) + 1, int(arrivals[-1]))]
    most, start = 0, 0
    for end, t in enumerate(arrivals):
        while t - arrivals[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return {"windows": full, "sliding_max": most}


def run(plan: Plan) -> dict[str, Any]:
    with bench_site() as env, FakeBetatelServer(token=TOKEN, send_time=plan.per_request) as fake:
        env.update(
            TASKS_BACKEND="database",
            BENCH_REDIS_URL=REDIS,
            BENCH_CACHE_PREFIX=Path(env["BENCH_DATABASE_URL"]).name,
            BENCH_TASK_CHUNK_SIZE=str(plan.chunk_size),
            BENCH_BETATEL_BACKEND="http",
            BENCH_BETATEL_API_URL=fake.url,
        )
        os.environ.update(env)  # this process enqueues and checks with the same settings
        site_in_process(env["BENCH_DATABASE_URL"])
        runs = [drain(fake, env, "drain", workers, n) for workers, n in plan.sizes]
        rate, workers, n = plan.rate
        paced = drain(fake, env, "rate", workers, n, rate)
    return {"runs": runs, "paced": {**paced, **per_second(paced.pop("arrivals"))}}


def tables(data: dict[str, Any]) -> str:
    runs, paced = data["runs"], data["paced"]
    drained = table(
        "workers | N | chunk | threads each | enqueue s | first send s | wall s | ideal s "
        "| wall ÷ ideal | target | met?",
        (
            f"{r['workers']} | {r['n']} | {r['chunk_size']} | {r['concurrency']} | "
            f"{r['enqueue_seconds']:.2f} | {r['first_send_seconds']:.2f} | "
            f"{r['wall_seconds']:.2f} | {r['ideal_seconds']:.2f} | "
            f"**{r['wall_seconds'] / r['ideal_seconds']:.3f}** | ≤ 1.25 | "
            f"{met(r['wall_seconds'] / r['ideal_seconds'] <= 1.25)}"
            for r in runs
        ),
    )
    cpu = table(
        "workers | N | sends/s | CPU ms per address: workers | PostgreSQL | fake (this process) "
        f"| machine busy, cores of {os.cpu_count()}",
        (
            f"{r['workers']} | {r['n']} | {r['n'] / r['wall_seconds']:.0f} | "
            f"{r['worker_cpu_ms_per_address']:.2f} | {r['database_cpu_ms_per_address']:.2f} | "
            f"{r['fake_cpu_ms_per_address']:.2f} | {r['machine_busy_cores']:.2f}"
            for r in runs
        ),
    )
    memory = []
    for workers in sorted({r["workers"] for r in runs}):
        mine = {r["n"]: max(r["peak_rss_kb"]) / 1024 for r in runs if r["workers"] == workers}
        small, large = min(mine), max(mine)
        growth = mine[large] / mine[small]
        memory.append(
            f"{workers} | {small} → {large} | {mine[small]:.1f} → {mine[large]:.1f} | "
            f"**{growth:.3f}** | ≤ 1.05 | {met(growth <= 1.05)}"
        )
    limit = int(paced["rate"].split("/")[0])
    windows = paced["windows"]
    most = max(windows, default=0)
    pacing = (
        f"{paced['rate']} | {paced['workers']} x {paced['concurrency']} | {paced['n']} | "
        f"{paced['wall_seconds']:.1f} | {paced['n'] / limit:.1f} | {len(windows)} | "
        f"{median(windows):g} | **{most}** | {paced['sliding_max']} | ≤ {limit * 1.05:g} | "
        f"{met(most <= limit * 1.05)}"
    )
    return "\n".join(
        [
            drained,
            cpu,
            table(
                "workers | N | peak RSS MiB (largest worker) | large ÷ small | target | met?",
                memory,
            ),
            table(
                "BULK_RATE | workers x threads | N | wall s | N ÷ rate s | whole seconds "
                "| median per second | most in a second | most in any 1 s span | target | met?",
                [pacing],
            ),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    args = arguments(__doc__).parse_args(argv)
    data = run(SMOKE if args.smoke else PLAN)
    finish(args.json, tables(data), data)


if __name__ == "__main__":
    main()
