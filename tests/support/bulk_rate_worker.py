"""One worker process of the shared ``BULK_RATE`` test.

Run as ``python -m tests.support.bulk_rate_worker NAME COUNT`` with the
environment of :func:`tests.support.real_services.scratch_database` (PostgreSQL
and Redis), ``BETATEL_IT_API_URL`` pointing at a fake Betatel and
``BETATEL_IT_BARRIER`` at a :class:`~tests.support.process_barrier.ProcessBarrier`.
Records a batch of ``COUNT`` addresses, waits at the barrier, sends it four at
a time under ``BULK_RATE`` and prints what it sent as JSON.
"""

from __future__ import annotations

import json
import os
import sys

import django

from tests.support.process_barrier import wait_at


def main() -> None:
    name, count = sys.argv[1], int(sys.argv[2])
    django.setup()
    from django.conf import settings

    from betatel_reset.batches import create_batch, run_batch
    from betatel_reset.choices import Source

    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "BACKEND": "http",
        "BULK_RATE": os.environ["BETATEL_IT_BULK_RATE"],
        "CIRCUIT_FAILURE_THRESHOLD": 1000,
    }
    addresses = [f"{name}-{n}@example.com" for n in range(count)]
    batch = create_batch(addresses, source=Source.TASK)
    wait_at(os.environ["BETATEL_IT_BARRIER"])
    result = run_batch(batch, concurrency=4)
    print(json.dumps(dict(result.outcomes)))


if __name__ == "__main__":
    main()
