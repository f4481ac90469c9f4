"""django-tasks-db settings for a site served by gunicorn, with a db_worker
beside it, on one SQLite file: ``tests/test_delivery_timing.py``.

``BETATEL_TEST_DELIVERY`` and ``BETATEL_TEST_RESPONSE_FLOOR`` choose the mode;
``BETATEL_TEST_BACKEND`` the backend (``bench/delivery.py`` compares with
``locmem``); rate limits are off, so that one client may post hundreds of times.
"""

import os

from tests.support.settings.tasks_db import *  # noqa: F403
from tests.support.settings.tasks_db import BETATEL_RESET

_FLOOR = os.environ.get("BETATEL_TEST_RESPONSE_FLOOR")

BETATEL_RESET = {
    **BETATEL_RESET,
    "BACKEND": os.environ.get("BETATEL_TEST_BACKEND", "http"),
    "DELIVERY": os.environ.get("BETATEL_TEST_DELIVERY", "queued"),
    "RESPONSE_FLOOR": float(_FLOOR) if _FLOOR else None,
    "RATE_LIMIT_EMAIL": None,
    "RATE_LIMIT_IP": None,
    "CIRCUIT_FAILURE_THRESHOLD": 1000,
}
