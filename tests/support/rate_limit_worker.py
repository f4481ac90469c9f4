"""One process of the cross-process rate limit test.

Run as ``python -m tests.support.rate_limit_worker EMAIL THREADS`` with
``BETATEL_IT_BARRIER`` set to a :class:`~tests.support.process_barrier.ProcessBarrier`'s
address. Sets up Django, has each of ``THREADS`` threads open its own database
and cache connections, waits at the barrier until every process is just as
ready, then fires the ``THREADS`` public resends at once and prints how many
were admitted and limited as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import threading

import django

from tests.support.process_barrier import wait_at


def main() -> None:
    email, threads = sys.argv[1], int(sys.argv[2])
    django.setup()
    from django.core.cache import caches
    from django.db import connection, connections
    from django.test import RequestFactory

    from betatel_reset.conf import app_settings
    from betatel_reset.exceptions import RateLimitExceeded
    from betatel_reset.services import resend_reset_email

    counts = {"sent": 0, "limited": 0}
    lock = threading.Lock()
    warmed = threading.Barrier(threads + 1, timeout=60)  # every thread, and this one
    go = threading.Event()

    def fire(i: int) -> None:
        request = RequestFactory().post("/", REMOTE_ADDR=f"198.51.100.{i % 250 + 1}")
        # Django's connections are per thread: open this thread's own now, so
        # the first resend does not pay for them.
        connection.ensure_connection()
        caches[app_settings.CACHE_ALIAS].get("betatel-it-warm-up")
        warmed.wait()
        go.wait()
        try:
            resend_reset_email(email, request=request)
            outcome = "sent"
        except RateLimitExceeded:
            outcome = "limited"
        finally:
            connections.close_all()
        with lock:
            counts[outcome] += 1

    # Daemons: should the main thread fail at the barrier, the process still ends.
    workers = [threading.Thread(target=fire, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    warmed.wait()
    wait_at(os.environ["BETATEL_IT_BARRIER"])
    go.set()
    for worker in workers:
        worker.join()
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
