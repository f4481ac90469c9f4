"""One process of the cross-process rate limit test.

Run as ``python -m tests.support.rate_limit_worker EMAIL THREADS``: waits until the file
named by ``BETATEL_IT_START`` exists, fires ``THREADS`` public resends at once
and prints how many were admitted and limited as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import django


def main() -> None:
    email, threads = sys.argv[1], int(sys.argv[2])
    django.setup()
    from django.db import connections
    from django.test import RequestFactory

    from betatel_reset.exceptions import RateLimitExceeded
    from betatel_reset.services import resend_reset_email

    counts = {"sent": 0, "limited": 0}
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def fire(i: int) -> None:
        request = RequestFactory().post("/", REMOTE_ADDR=f"198.51.100.{i % 250 + 1}")
        barrier.wait()
        try:
            resend_reset_email(email, request=request)
            outcome = "sent"
        except RateLimitExceeded:
            outcome = "limited"
        finally:
            connections.close_all()
        with lock:
            counts[outcome] += 1

    start_file = os.environ["BETATEL_IT_START"]
    while not os.path.exists(start_file):
        time.sleep(0.005)
    workers = [threading.Thread(target=fire, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
