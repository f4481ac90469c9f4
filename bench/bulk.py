"""Benchmark 3: bulk resends, against the ideal ``N x RTT / concurrency``.

    python -m bench.bulk                          # 1,000 and 10,000 addresses, both paths
    python -m bench.bulk --sizes 1000 --paths command
    python -m bench.bulk --smoke                  # 20 addresses, SQLite, to check it runs

Each run is a child process (``bench.bulk_worker``) sending to N distinct
addresses read from a file, against the fake Betatel over TLS behind the
simulated link of ``bench.upstream`` (every request costs one RTT once its
connection is open), with the audit rows going to a scratch PostgreSQL
database (``--db``):

* **command**: ``manage.py betatel_resend --file``, default concurrency
  (``INLINE_CONCURRENCY``);
* **task**: ``betatel_reset.tasks.enqueue_in_chunks`` on the immediate task
  backend: chunks of ``TASK_CHUNK_SIZE``, ``TASK_CONCURRENCY`` at a time.

Reported per run: wall time of the send (measured in the child, without
Django's start-up), the ideal ``N x RTT / concurrency`` and their ratio, and the
child's peak RSS (``ru_maxrss`` from ``os.wait4``); memory should not grow from
1,000 to 10,000 addresses.

Each round of the smallest size also times the **harness floor** at each
concurrency: the same N requests from raw keep-alive ``http.client``
connections, one process each, no Django: what the fake server and the
simulated link cost by themselves on this machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.harness import (
    PYTHON,
    ROOT,
    Result,
    Row,
    command_line,
    median,
    pick_database,
    scratch_database,
    stop_process,
)
from bench.upstream import Upstream

#: Sizes up to this run ``--rounds`` times; larger ones ``--rounds-large`` times.
SMALL = 2000


def write_addresses(path: Path, n: int, tag: str) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            out.write(f"bulk-{tag}-{i:06d}@example.com\n")


def run_worker(argv: list[str], env: dict[str, str], timeout: float) -> tuple[dict[str, Any], int]:
    """Run ``bench.bulk_worker``; (its JSON, its peak RSS in KiB from ``wait4``)."""
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(
            [PYTHON, "-m", "bench.bulk_worker", *argv],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        timer = threading.Timer(timeout, stop_process, args=(proc,))
        timer.start()
        try:
            out = proc.stdout.read()  # type: ignore[union-attr]
            _pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            timer.cancel()
            stop_process(proc)
        errors.seek(0)
        err = errors.read()
    if proc.returncode != 0:
        raise RuntimeError(f"bench.bulk_worker {argv} failed ({proc.returncode}):\n{err[-3000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result, usage.ru_maxrss


def run(args: argparse.Namespace) -> dict[str, Any]:
    database = pick_database(args.db)
    # (sizes, round trip, server think time): the main runs, then, if asked for,
    # the smallest size again with a slower, more realistic API.
    plans = [([int(s) for s in args.sizes.split(",")], args.rtt_ms, args.latency_ms, None)]
    if args.slow_api_ms:
        plans.append(([min(plans[0][0])], args.rtt_ms, args.slow_api_ms, args.rounds_large))
    runs: list[dict[str, Any]] = []
    floors: list[dict[str, Any]] = []
    with (
        scratch_database(database) as env,
        tempfile.TemporaryDirectory(prefix="betatel-bench-") as tmp,
    ):
        env = {**env, "DJANGO_SETTINGS_MODULE": "bench.site_settings"}
        concurrency = _default_concurrency(env)
        for sizes, rtt_ms, latency_ms, plan_rounds in plans:
            # No spinning in the proxy: under concurrency it would take CPU from
            # the process measured, and 0.2 ms matters little at a 25 % margin.
            with Upstream(rtt=rtt_ms / 1000, latency=latency_ms / 1000, spin=0.0) as upstream:
                upstream_env = {
                    **env,
                    "BENCH_BETATEL_BACKEND": "http",
                    "BENCH_BETATEL_API_URL": upstream.url,
                    "BENCH_CA_BUNDLE": upstream.ca_bundle,
                }
                for n in sizes:
                    rounds = plan_rounds or (args.rounds if n <= SMALL else args.rounds_large)
                    for number in range(rounds):
                        for path in args.paths.split(","):
                            runs.append(
                                _one_run(
                                    upstream,
                                    upstream_env,
                                    Path(tmp),
                                    path=path,
                                    n=n,
                                    number=number,
                                    per_request_ms=rtt_ms + latency_ms,
                                    concurrency=concurrency[path],
                                )
                            )
                        if n == min(sizes):
                            for level in sorted(set(concurrency.values())):
                                floors.append(
                                    {
                                        "n": n,
                                        "per_request_ms": rtt_ms + latency_ms,
                                        "concurrency": level,
                                        "wall_seconds": floor_run(upstream, n, level),
                                    }
                                )
    return {"database": database, "rtt_ms": args.rtt_ms, "runs": runs, "floors": floors}


def _floor_worker(
    url: str, ca_bundle: str, count: int, start: Any, results: Any
) -> None:  # pragma: no cover - runs in a child process
    from bench.client import FloorClient

    parts = urlsplit(url)
    client = FloorClient(parts.hostname or "127.0.0.1", parts.port or 443, ca_bundle)
    client()  # connected and warm before the clock starts
    results.put("ready")
    start.wait()
    started = time.perf_counter()
    for _ in range(count):
        client()
    results.put(time.perf_counter() - started)
    client.close()


def floor_run(upstream: Upstream, n: int, concurrency: int) -> float:
    """Seconds for ``n`` requests, ``concurrency`` at a time, from raw keep-alive
    clients in processes of their own: the harness's own floor."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    counts = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
    workers = [
        context.Process(
            target=_floor_worker, args=(upstream.url, upstream.ca_bundle, count, start, results)
        )
        for count in counts
    ]
    try:
        for worker in workers:
            worker.start()
        for _ in workers:  # every client connected and warm
            if results.get(timeout=60) != "ready":
                raise RuntimeError("a floor client answered out of turn")
        start.set()
        walls = [float(results.get(timeout=60 + 10 * n * upstream.rtt)) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()  # a child of ours, by its own handle
    print(f"  floor   N={n:<6d} concurrency {concurrency}: {max(walls):.2f} s", flush=True)
    return max(walls)


def _one_run(
    upstream: Upstream,
    env: dict[str, str],
    tmp: Path,
    *,
    path: str,
    n: int,
    number: int,
    per_request_ms: float,
    concurrency: int,
) -> dict[str, Any]:
    addresses = tmp / f"{path}-{n}-{number}.txt"
    tag = f"{path}{number}-{per_request_ms:.0f}"
    write_addresses(addresses, n, tag)
    before = upstream.stats()["requests"]
    timeout = 60 + 20 * n * per_request_ms / 1000
    report, rss_kb = run_worker([path, str(addresses)], env, timeout)
    requests_upstream = upstream.stats()["requests"] - before
    addresses.unlink()
    ideal = n * per_request_ms / 1000 / concurrency
    print(
        f"  {path:7s} N={n:<6d} {per_request_ms:.0f} ms/request, round {number + 1}: "
        f"{report['wall_seconds']:.2f} s (ideal {ideal:.2f} s), "
        f"peak RSS {rss_kb / 1024:.1f} MiB, {report['outcomes']}",
        flush=True,
    )
    return {
        "path": path,
        "n": n,
        "round": number,
        "per_request_ms": per_request_ms,
        "concurrency": concurrency,
        "wall_seconds": report["wall_seconds"],
        "cpu_ms_per_address": report["cpu_seconds"] * 1000 / n,
        "ideal_seconds": ideal,
        "ratio": report["wall_seconds"] / ideal,
        "sends_per_second": n / report["wall_seconds"],
        "peak_rss_kb": rss_kb,
        "baseline_rss_kb": report["baseline_rss_kb"],
        "outcomes": report["outcomes"],
        "requests_upstream": requests_upstream,
        "error": report["error"],
    }


def _default_concurrency(env: dict[str, str]) -> dict[str, Any]:
    """INLINE_CONCURRENCY (the command's default) and TASK_CONCURRENCY, as configured."""
    from tests.support.real_services import in_django

    result: dict[str, Any] = in_django(
        "from betatel_reset.conf import app_settings as s\n"
        "print(json.dumps({'command': s.INLINE_CONCURRENCY, 'task': s.TASK_CONCURRENCY}))",
        env,
    )
    return result


def build_result(args: argparse.Namespace, argv: list[str], data: dict[str, Any]) -> Result:
    result = Result(
        benchmark="bulk",
        command=command_line("bench.bulk", argv),
        params={
            "sizes": args.sizes,
            "paths": args.paths,
            "rtt_ms": args.rtt_ms,
            "latency_ms": args.latency_ms,
            "slow_api_ms": args.slow_api_ms,
            "rounds": args.rounds,
            "rounds_large": args.rounds_large,
            "database": data["database"],
        },
        details=[data],
    )
    runs = data["runs"]
    for per_request_ms in sorted({r["per_request_ms"] for r in runs}):
        for path in args.paths.split(","):
            mine = [r for r in runs if r["path"] == path and r["per_request_ms"] == per_request_ms]
            result.rows.extend(_rows_for(path, per_request_ms, mine))
            result.rows.extend(_floor_rows(path, per_request_ms, mine, data.get("floors", [])))
    bad = [r for r in runs if r["error"] or r["outcomes"].get("sent", 0) != r["n"]]
    if bad:
        result.notes.append(f"runs where not every address was sent: {bad}")
    result.notes.append(
        f"Simulated RTT {data['rtt_ms']:.0f} ms (bench.upstream); ideal = N x (RTT + the "
        f"fake server's think time) / concurrency; database {data['database']}."
    )
    return result


def _rows_for(path: str, per_request_ms: float, runs: list[dict[str, Any]]) -> list[Row]:
    rows = []
    sizes = sorted({r["n"] for r in runs})
    peaks: dict[int, float] = {}
    for n in sizes:
        of_size = [r for r in runs if r["n"] == n]
        wall = median([r["wall_seconds"] for r in of_size])
        ideal = of_size[0]["ideal_seconds"]
        peaks[n] = median([r["peak_rss_kb"] for r in of_size]) / 1024
        all_sent = all(r["outcomes"].get("sent", 0) == n and not r["error"] for r in of_size)
        rows.append(
            Row(
                benchmark=f"3. Bulk via {path}, {per_request_ms:.0f} ms per request: "
                "wall time vs N x per-request time / concurrency",
                n=f"{n} ({len(of_size)} run{'s' if len(of_size) > 1 else ''}), "
                f"concurrency {of_size[0]['concurrency']}",
                ours=f"{wall:.2f} s ({n / wall:.0f} sends/s), peak RSS {peaks[n]:.1f} MiB",
                alternative=f"ideal {ideal:.2f} s",
                ratio=wall / ideal,
                ratio_label="wall ÷ ideal",
                target="≤ 1.25",
                met=wall / ideal <= 1.25 and all_sent,
            )
        )
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        growth = peaks[large] - peaks[small]
        per_address = growth * 1024 * 1024 / (large - small)
        rows.append(
            Row(
                benchmark=f"3. Bulk via {path}: peak memory (RSS), {small} vs {large} addresses",
                n=f"{small} → {large}",
                ours=f"{peaks[small]:.1f} → {peaks[large]:.1f} MiB "
                f"({growth:+.1f} MiB, {per_address:+.0f} B/address)",
                alternative="flat",
                ratio=peaks[large] / peaks[small],
                ratio_label="large ÷ small",
                target="≤ 1.05 (flat)",
                met=peaks[large] / peaks[small] <= 1.05,
            )
        )
    return rows


def _floor_rows(
    path: str, per_request_ms: float, runs: list[dict[str, Any]], floors: list[dict[str, Any]]
) -> list[Row]:
    if not runs:
        return []
    n, concurrency = min(r["n"] for r in runs), runs[0]["concurrency"]
    walls = [
        f["wall_seconds"]
        for f in floors
        if (f["n"], f["concurrency"], f["per_request_ms"]) == (n, concurrency, per_request_ms)
    ]
    if not walls:
        return []
    floor = median(walls)
    wall = median([r["wall_seconds"] for r in runs if r["n"] == n])
    ideal = runs[0]["ideal_seconds"] * n / runs[0]["n"]
    return [
        Row(
            benchmark=f"3. Bulk via {path}, {per_request_ms:.0f} ms per request: wall time vs "
            "the harness floor (raw keep-alive clients, same concurrency)",
            n=f"{n} ({len(walls)} run{'s' if len(walls) > 1 else ''}), concurrency {concurrency}",
            ours=f"{wall:.2f} s",
            alternative=f"floor {floor:.2f} s ({floor / ideal:.2f}x the ideal)",
            ratio=wall / floor,
            ratio_label="wall ÷ floor",
            target="-",
            met=None,
        )
    ]


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--paths", default="command,task")
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="fake's think time")
    parser.add_argument(
        "--slow-api-ms",
        type=float,
        default=80.0,
        help="then the smallest size once more, with this think time (0: skip)",
    )
    parser.add_argument("--rounds", type=int, default=3, help=f"runs of sizes ≤ {SMALL}")
    parser.add_argument("--rounds-large", type=int, default=1, help="runs of larger sizes")
    parser.add_argument("--db", choices=["auto", "postgres", "sqlite"], default="auto")
    parser.add_argument("--smoke", action="store_true", help="tiny N, to check it runs")
    parser.add_argument("--json", metavar="PATH", help="write the result as JSON")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.rounds, args.rounds_large, args.rtt_ms = "10,20", 1, 1, 2.0
        args.slow_api_ms = 5.0
        if args.db == "auto":
            args.db = "sqlite"
    data = run(args)
    result = build_result(args, list(argv or []), data)
    result.print_rows()
    result.write(args.json)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
