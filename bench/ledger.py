"""Benchmark 8: the batch ledger's client CPU per address, ``batches.send_now`` against
the loop before batches (``bulk.send_many``), on PostgreSQL and a fake Betatel over TLS."""

from __future__ import annotations

import resource

from bench.harness import bench_site, median, site_in_process
from bench.report import arguments, finish, met, table
from bench.upstream import Upstream


def main() -> None:
    args = arguments(__doc__).parse_args()
    n, rounds = (20, 2) if args.smoke else (2000, 6)
    cpu: dict[str, list[float]] = {"before": [], "ledger": []}
    with bench_site() as env, Upstream(rtt=0.0, spin=0.0) as up:
        site = {"BACKEND": "http", "API_URL": up.url, "CA_BUNDLE": up.ca_bundle}
        site_in_process(env["BENCH_DATABASE_URL"], **site)
        from betatel_reset import batches, bulk

        ways = [("before", bulk.send_many), ("ledger", batches.send_now)]
        for r in range(rounds + 1):  # round 0 warms up (connections, code), uncounted
            for how, send in ways if r % 2 else ways[::-1]:  # each goes first every other round
                at = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
                done = send((f"{how}{r}-{i}@example.com" for i in range(n)), source="task")  # type: ignore[arg-type]
                spent = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - at
                cpu[how] += [spent * 1e3 / n if done.sent == n else float("nan")][: bool(r)]
    before, ledger = median(cpu["before"]), median(cpu["ledger"])
    paired = median([b / a for a, b in zip(cpu["before"], cpu["ledger"], strict=True)])
    more = f"{ledger / before - 1:+.0%} | {paired - 1:+.0%} | {met(paired < 1.15)}"
    head = (
        "N | rounds | CPU ms/address before | with the ledger | more (medians)"
        " | more (median of rounds) | under 15%"
    )
    finish(args.json, table(head, [f"{n} | {rounds} | {before:.3f} | {ledger:.3f} | {more}"]), cpu)


if __name__ == "__main__":
    main()
