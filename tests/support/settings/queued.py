"""django-tasks-db settings for a site served by gunicorn, with a db_worker
beside it, on one SQLite file: ``tests/test_delivery_timing.py``.

``BETATEL_TEST_DELIVERY`` and ``BETATEL_TEST_RESPONSE_FLOOR`` choose the mode;
``BETATEL_TEST_BACKEND`` the backend (``bench/delivery.py`` compares with
``locmem``); rate limits are off, so that one client may post hundreds of times.
With ``BETATEL_IT_DB_NAME`` (a scratch database of
``tests.support.real_services.scratch_database``) the site, its audit rows and
its task queue are on PostgreSQL instead, connections kept open, as a
production site runs them.
"""

import os

from tests.support.settings.tasks_db import *  # noqa: F403
from tests.support.settings.tasks_db import BETATEL_RESET

_FLOOR = os.environ.get("BETATEL_TEST_RESPONSE_FLOOR")

if os.environ.get("BETATEL_IT_DB_NAME"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "USER": "postgres",
            "NAME": os.environ["BETATEL_IT_DB_NAME"],
            "CONN_MAX_AGE": 60,
        }
    }

BETATEL_RESET = {
    **BETATEL_RESET,
    "BACKEND": os.environ.get("BETATEL_TEST_BACKEND", "http"),
    "DELIVERY": os.environ.get("BETATEL_TEST_DELIVERY", "queued"),
    "RESPONSE_FLOOR": float(_FLOOR) if _FLOOR else None,
    "RATE_LIMIT_EMAIL": None,
    "RATE_LIMIT_IP": None,
    "CIRCUIT_FAILURE_THRESHOLD": 1000,
}
