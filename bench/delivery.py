"""Benchmark 7: resend POSTs/s and p99 with a 200 ms Betatel, inline vs queued (see docs).

The site, its audit rows and its django-tasks-db queue are on a scratch
PostgreSQL database, as the other server benchmarks are."""

from __future__ import annotations

from bench.harness import http_load
from bench.report import arguments, finish, met, table
from betatel_reset.testing import FakeBetatelServer
from tests.support.queued_site import PAGE, posting, queued_site
from tests.support.real_services import in_django, scratch_database

#: name: DELIVERY, BACKEND and RESPONSE_FLOOR
MODES = {"inline": "inline http", "queued": "queued http", "locmem": "inline locmem"}
MODES["floor"] = "inline http 1.0"

#: The CPU of the task backend's ``enqueue()`` alone, in its own transaction as
#: the page does it, in a process of the queued site: the part of a queued POST
#: that no code of ours can save.
ENQUEUE_CPU = """
import time
from django.db import transaction
from betatel_reset.delivery import deliver_resend
def enqueue(n):
    started = time.process_time()
    for _ in range(n):
        with transaction.atomic():
            deliver_resend.enqueue("bench@example.com", queued_at=time.time())
    return (time.process_time() - started) * 1e3 / n
enqueue({warm})
print(json.dumps(enqueue({n})))
"""


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
                if mode == "queued":
                    n = 50 if args.smoke else 2000
                    enqueue_ms = in_django(ENQUEUE_CPU.format(warm=n // 10, n=n), site.env)
    up, down = (r["queued"]["rps"] / r[base]["rps"] for base in ("inline", "locmem"))
    locmem_ms = r["locmem"]["app_cpu_ms"]
    best = locmem_ms / (locmem_ms + enqueue_ms)
    row = "{} | {rps:.1f} | {p99_ms:.0f} | {app_cpu_ms:.1f} | {bad}"
    tables = table(
        "delivery | POSTs/s | p99 ms | gunicorn CPU ms/POST | bad answers",
        [row.format(mode, **values) for mode, values in r.items()],
    )
    tables += f"\nqueued/inline: {up:.1f}x (target 10x: {met(up >= 10)}); queued/locmem: "
    tables += f"{down:.2f}x (target 0.9x: {met(down >= 0.9)})\n\n"
    tables += table(
        "locmem POST, gunicorn CPU ms | enqueue() alone, CPU ms | locmem ÷ (locmem + enqueue)",
        [f"{locmem_ms:.2f} | {enqueue_ms:.2f} | {best:.2f}x"],
    )
    extra = {"enqueue_cpu_ms": enqueue_ms, "best_ratio": best}
    finish(args.json, tables, {"seconds": seconds, "clients": clients, "results": r, **extra})


if __name__ == "__main__":
    main()
