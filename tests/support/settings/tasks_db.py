"""Test settings with django-tasks-db's ``DatabaseBackend`` as the task backend.

Used by ``tests/support/tasks_db_scenarios.py`` (under pytest) and by the
processes of the killed-process tests in ``tests/test_tasks.py`` and
``tests/test_batches.py``, which share a SQLite file and a fake Betatel API
given by ``BETATEL_TEST_DB`` and ``BETATEL_TEST_API_URL``.
"""

import os

from tests.settings import *  # noqa: F403
from tests.settings import BETATEL_RESET, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # pytest-django replaces it with an in-memory test database.
        "NAME": os.environ.get("BETATEL_TEST_DB", ":memory:"),
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
    }
}
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
BETATEL_RESET = {
    **BETATEL_RESET,
    "API_URL": os.environ.get("BETATEL_TEST_API_URL", "http://127.0.0.1:9"),
    "TASK_CHUNK_SIZE": int(os.environ.get("BETATEL_TEST_CHUNK_SIZE", "3")),
    "TASK_CONCURRENCY": int(os.environ.get("BETATEL_TEST_CONCURRENCY", "1")),
    "BULK_STALE_AFTER": float(os.environ.get("BETATEL_TEST_STALE_AFTER", "60")),
}
