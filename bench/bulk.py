"""Benchmark 3: bulk resends, via the command and the task path, against the ideal
``N x per-request time / concurrency`` and against the harness floor.

Each run is a child process (``--child PATH FILE``) that times the send alone;
docs/benchmarks.md describes the method.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import resource
import subprocess
import tempfile
import time
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

from bench.harness import PYTHON, ROOT, bench_site, median
from bench.report import arguments, finish, met, table
from bench.upstream import Upstream

PATHS = ("command", "task")
#: (round trip ms, the fake's think time ms): [(N, rounds), ...]; a fast API at two sizes,
#: then a slow one. The floor is measured at the smallest N.
PLAN = {(20, 0): [(1000, 3), (10000, 1)], (20, 80): [(1000, 1)]}
SMOKE = {(2, 0): [(10, 1), (20, 1)], (2, 5): [(10, 1)]}


def child(path: str, file: str) -> None:  # pragma: no cover - runs in a child process
    """One bulk send, timed from inside; prints its numbers as one JSON line."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db.models import Count
    from django.utils import timezone

    from bench.harness import silence_console_log
    from betatel_reset.choices import Source
    from betatel_reset.conf import app_settings
    from betatel_reset.models import ResendAttempt
    from betatel_reset.tasks import enqueue_in_chunks

    silence_console_log()
    before, began_at = resource.getrusage(resource.RUSAGE_SELF), timezone.now()
    started = time.perf_counter()
    if path == "command":
        call_command("betatel_resend", "--file", file, stdout=io.StringIO(), stderr=io.StringIO())
        concurrency = app_settings.INLINE_CONCURRENCY
    else:
        addresses = [line.strip() for line in Path(file).read_text().splitlines() if line.strip()]
        enqueue_in_chunks(addresses, source=Source.TASK, actor=None)
        concurrency = app_settings.TASK_CONCURRENCY
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    rows = ResendAttempt.objects.filter(created_at__gte=began_at).values_list("outcome")
    outcomes = dict(rows.annotate(n=Count("id")).values_list("outcome", "n"))
    report = {"wall_seconds": wall, "concurrency": concurrency, "outcomes": outcomes}
    report["cpu_ms_per_address"] = cpu * 1000 / max(1, sum(outcomes.values()))
    print(json.dumps({**report, "peak_rss_kb": after.ru_maxrss}))


def one_run(
    upstream: Upstream, env: dict[str, str], path: str, n: int, ms: float
) -> dict[str, Any]:
    """One bulk send of ``n`` addresses by ``path``, at ``ms`` per request, in a child."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as addresses:
        addresses.writelines(f"bulk-{path}-{i:06d}@example.com\n" for i in range(n))
        addresses.flush()
        before = upstream.requests()
        done = subprocess.run(
            [PYTHON, "-m", "bench.bulk", "--child", path, addresses.name],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60 + 20 * n * ms / 1000,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{path} of {n} failed ({done.returncode}): {done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    sent = upstream.requests() - before
    if report["outcomes"] != {"sent": n} or sent != n:
        raise RuntimeError(f"{path} of {n}: {report['outcomes']}, {sent} requests upstream")
    run = {"path": path, "n": n, "per_request_ms": ms, **report}
    run["ideal_seconds"] = n * ms / 1000 / run["concurrency"]
    print(
        f"  {path:7s} N={n:<6d} {ms:g} ms: {run['wall_seconds']:.2f} s "
        f"(ideal {run['ideal_seconds']:.2f} s), peak RSS {run['peak_rss_kb'] / 1024:.1f} MiB",
        flush=True,
    )
    return run


def _floor_client(
    url: str, ca_bundle: str, start: Any, results: Any, count: int
) -> None:  # pragma: no cover - runs in a child process
    from bench.client import FloorClient

    client = FloorClient(url, ca_bundle)
    client()  # connected and warm before the clock starts
    results.put("ready")
    start.wait()
    started = time.perf_counter()
    for _ in range(count):
        client()
    results.put(time.perf_counter() - started)


def floor_run(upstream: Upstream, n: int, concurrency: int, ms: float) -> dict[str, Any]:
    """Seconds for ``n`` requests, ``concurrency`` at a time, from raw keep-alive clients
    in processes of their own: what the fake and the link cost by themselves."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    counts = [n // concurrency + (i < n % concurrency) for i in range(concurrency)]
    shared = (upstream.url, upstream.ca_bundle, start, results)
    clients = [context.Process(target=_floor_client, args=(*shared, count)) for count in counts]
    try:
        for process in clients:
            process.start()
        for _ in clients:
            if results.get(timeout=60) != "ready":
                raise RuntimeError("a floor client answered out of turn")
        start.set()
        wall = max(float(results.get(timeout=60 + 10 * n * upstream.rtt)) for _ in clients)
    finally:
        for process in clients:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()  # our own child, by its handle
    print(f"  floor   N={n:<6d} concurrency {concurrency}: {wall:.2f} s", flush=True)
    return {"per_request_ms": ms, "n": n, "concurrency": concurrency, "wall_seconds": wall}


def run(plan: dict[tuple[int, int], list[tuple[int, int]]]) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    floors: list[dict[str, Any]] = []
    with bench_site() as env:
        for (rtt, think), sizes in plan.items():
            # No spinning in the proxy: under concurrency it would take CPU from the
            # process measured, and 0.2 ms matters little at a 25 % margin.
            with Upstream(rtt=rtt / 1000, latency=think / 1000, spin=0.0) as upstream:
                env["BENCH_BETATEL_BACKEND"] = "http"
                env["BENCH_BETATEL_API_URL"] = upstream.url
                env["BENCH_CA_BUNDLE"] = upstream.ca_bundle
                for n, rounds in sizes:
                    for number in range(rounds):
                        mine = [one_run(upstream, env, path, n, rtt + think) for path in PATHS]
                        runs += [{**run, "round": number} for run in mine]
                        if n == min(sizes)[0]:
                            levels = sorted({run["concurrency"] for run in mine})
                            floors += [floor_run(upstream, n, c, rtt + think) for c in levels]
    return {"runs": runs, "floors": floors}


def tables(data: dict[str, Any]) -> str:
    runs, floors = data["runs"], data["floors"]

    def floor(ms: float, concurrency: int, n: int | None = None) -> float:
        """Median floor, in seconds (at size ``n``) or in ms per request (any size)."""
        mine = [f for f in floors if (f["per_request_ms"], f["concurrency"]) == (ms, concurrency)]
        if n is not None:
            return median([f["wall_seconds"] for f in mine if f["n"] == n])
        return median([f["wall_seconds"] * concurrency / f["n"] * 1000 for f in mine])

    each_run = table(
        "path | per request | N | round | concurrency | wall s | ideal s | ratio | sends/s "
        "| peak RSS MiB",
        (
            f"{r['path']} | {r['per_request_ms']:g} ms | {r['n']} | {r['round'] + 1} | "
            f"{r['concurrency']} | {r['wall_seconds']:.2f} | {r['ideal_seconds']:.2f} | "
            f"{r['wall_seconds'] / r['ideal_seconds']:.2f} | {r['n'] / r['wall_seconds']:.0f} | "
            f"{r['peak_rss_kb'] / 1024:.1f}"
            for r in runs
        ),
    )
    summary = []
    key = itemgetter("per_request_ms", "path", "n")
    for (ms, path, n), group in groupby(sorted(runs, key=key), key=key):
        mine = list(group)
        threads, ideal = mine[0]["concurrency"], mine[0]["ideal_seconds"]
        wall = median([r["wall_seconds"] for r in mine])
        floor_s = floor(ms, threads, n)  # measured at the smallest N only
        summary.append(
            f"{path} | {ms:g} ms | {n} | {len(mine)} | {threads} | {wall:.2f} | {ideal:.2f} | "
            f"**{wall / ideal:.3f}** | ≤ 1.25 | {met(wall / ideal <= 1.25)} | "
            + (f"{floor_s:.2f} | {wall / floor_s:.3f}" if floor_s == floor_s else "- | -")
        )
    # Memory and the cost per address, at the fastest API.
    fastest = min(r["per_request_ms"] for r in runs)
    memory, per_address = [], []
    for path in PATHS:
        mine = [r for r in runs if (r["path"], r["per_request_ms"]) == (path, fastest)]
        small, large = min(r["n"] for r in mine), max(r["n"] for r in mine)
        rss = {
            n: median([r["peak_rss_kb"] / 1024 for r in mine if r["n"] == n])
            for n in (small, large)
        }
        growth = rss[large] / rss[small]
        memory.append(
            f"{path} | {small} → {large} | {rss[small]:.1f} → {rss[large]:.1f} | "
            f"{(rss[large] - rss[small]) * 2**20 / max(1, large - small):+.0f} B | "
            f"**{growth:.3f}** | ≤ 1.05 | {met(growth <= 1.05)}"
        )
        threads, rate = mine[0]["concurrency"], median([r["n"] / r["wall_seconds"] for r in mine])
        cpu = median([r["cpu_ms_per_address"] for r in mine])
        per_thread = median([r["wall_seconds"] * threads / r["n"] * 1000 for r in mine])
        per_address.append(
            f"{path} | {fastest:g} ms | {threads} | {per_thread:.1f} | "
            f"{floor(fastest, threads):.1f} | {rate:.0f} | {cpu:.2f} | {rate * cpu / 1000:.0%}"
        )
    return "\n".join(
        [
            each_run,
            table(
                "path | per request | N | runs | concurrency | median wall s | ideal s "
                "| wall ÷ ideal | target | met? | floor s | wall ÷ floor",
                summary,
            ),
            table(
                "path | N | peak RSS MiB | growth per address | large ÷ small | target | met?",
                memory,
            ),
            table(
                "path | per request | sending threads | ms per address per thread "
                "| floor ms per request | sends/s | CPU ms per address | share of a core",
                per_address,
            ),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__)
    parser.add_argument("--child", nargs=2, metavar=("PATH", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return
    data = run(SMOKE if args.smoke else PLAN)
    finish(args.json, tables(data), data)


if __name__ == "__main__":
    main()
