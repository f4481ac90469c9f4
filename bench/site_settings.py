"""The bench site: the demo (``project.settings``) run as in production (``DEBUG``
off), with Django's own password reset at ``/accounts/`` to compare against.

``BENCH_DATABASE_URL`` (default: in-memory SQLite), ``BENCH_BETATEL_BACKEND``
(default ``locmem``), ``BENCH_BETATEL_API_URL`` and ``BENCH_CA_BUNDLE``; the cache
is local memory, or Redis at ``BENCH_REDIS_URL`` (keys prefixed ``BENCH_CACHE_PREFIX``)
for processes that share it. ``BENCH_TASK_CHUNK_SIZE`` and ``BENCH_BULK_RATE`` set
those two settings (the demo's ``TASKS_BACKEND=database`` queues bulk sends for
``db_worker``). Rate limits are so high that they do all their work but never refuse.
"""

from project.settings import *  # noqa: F403
from project.settings import env

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.site_urls"

DATABASES = {"default": env.db("BENCH_DATABASE_URL", default="sqlite://:memory:")}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if env.str("BENCH_REDIS_URL", default=""):
    CACHES["default"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env.str("BENCH_REDIS_URL"),
        "KEY_PREFIX": env.str("BENCH_CACHE_PREFIX", default=""),
    }

# Django's PasswordResetView "sends" through the local-memory email backend.
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

BETATEL_RESET = {
    "API_URL": env.str("BENCH_BETATEL_API_URL", default="https://api.betatel.test"),
    "TOKEN": "bench-token",
    "BACKEND": env.str("BENCH_BETATEL_BACKEND", default="locmem"),
    "CA_BUNDLE": env.str("BENCH_CA_BUNDLE", default="") or None,
    "RATE_LIMIT_EMAIL": "1000000/h",
    "RATE_LIMIT_IP": "1000000/h",
    "CIRCUIT_FAILURE_THRESHOLD": 1000000,
    "TASK_CHUNK_SIZE": env.int("BENCH_TASK_CHUNK_SIZE", default=100),
    "BULK_RATE": env.str("BENCH_BULK_RATE", default="") or None,
}
