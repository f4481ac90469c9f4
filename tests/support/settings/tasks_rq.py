"""Test settings with RQ (django-tasks-rq) as the task backend, on the real
PostgreSQL and Redis: the processes of the two-RQ-workers test in
``tests/test_batches.py``, which share a scratch database, a Redis key prefix
and a fake Betatel API given by ``BETATEL_IT_API_URL``.
"""

import os

from tests.support.settings.postgres_redis import *  # noqa: F403
from tests.support.settings.postgres_redis import BETATEL_RESET, CACHES, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_rq"]
TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
RQ_QUEUES = {"default": {"URL": CACHES["default"]["LOCATION"]}}
BETATEL_RESET = {
    **BETATEL_RESET,
    "BACKEND": "http",
    "TASK_CHUNK_SIZE": 3,
    "TASK_CONCURRENCY": 2,
    "BULK_STALE_AFTER": float(os.environ.get("BETATEL_IT_STALE_AFTER", "60")),
    "CIRCUIT_FAILURE_THRESHOLD": 1000,
}
