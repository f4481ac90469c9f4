"""Benchmark 7: resend POSTs/s and p99 with a 200 ms Betatel, inline vs queued (see docs).

The site, its audit rows and its django-tasks-db queue are on a scratch
PostgreSQL database, as the other server benchmarks are."""

from __future__ import annotations

from bench.harness import http_load
from bench.report import arguments, finish, met, table
from betatel_reset.testing import FakeBetatelServer
from tests.support.queued_site import PAGE, posting, queued_site
from tests.support.real_services import scratch_database

#: name: DELIVERY, BACKEND and RESPONSE_FLOOR
MODES = {"inline": "inline http", "queued": "queued http", "locmem": "inline locmem"}
MODES["floor"] = "inline http 1.0"


def main(argv: list[str] | None = None) -> None:
    args, r = arguments(__doc__).parse_args(argv), {}
    seconds, clients = (1.0, 4) if args.smoke else (10.0, 16)
    with (
        FakeBetatelServer(token="fake-token-for-tests", send_time=0.2) as fake,
        scratch_database() as database,
    ):
        for mode, values in MODES.items():
            chosen = dict(
                zip(("DELIVERY", "BACKEND", "RESPONSE_FLOOR"), values.split(), strict=False)
            )
            with queued_site(fake.url, database, **chosen) as site:
                r[mode] = http_load(site.served, PAGE, seconds, clients, *posting(site.served))
    up, down = (r["queued"]["rps"] / r[base]["rps"] for base in ("inline", "locmem"))
    row = "{} | {rps:.1f} | {p99_ms:.0f} | {app_cpu_ms:.1f} | {bad}"
    tables = table(
        "delivery | POSTs/s | p99 ms | gunicorn CPU ms/POST | bad answers",
        [row.format(mode, **values) for mode, values in r.items()],
    )
    tables += f"\nqueued/inline: {up:.1f}x (target 10x: {met(up >= 10)}); queued/locmem: "
    tables += f"{down:.2f}x (target 0.9x: {met(down >= 0.9)})\n"
    finish(args.json, tables, {"seconds": seconds, "clients": clients, "results": r})


if __name__ == "__main__":
    main()
