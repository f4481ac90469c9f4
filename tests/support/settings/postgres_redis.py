"""Test settings on the real services: PostgreSQL and Redis on 127.0.0.1.

Used by the integration tests, which start Django in separate processes.
"""

import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("BETATEL_IT_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("BETATEL_IT_DB_PORT", "5432"),
        "USER": os.environ.get("BETATEL_IT_DB_USER", "postgres"),
        "NAME": os.environ.get("BETATEL_IT_DB_NAME", "test"),
        "CONN_MAX_AGE": 0,
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("BETATEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
        "KEY_PREFIX": os.environ.get("BETATEL_IT_CACHE_PREFIX", "betatel-it"),
    }
}
BETATEL_RESET = {
    "API_URL": os.environ.get("BETATEL_IT_API_URL", "https://api.betatel.test"),
    "TOKEN": "fake-token-for-tests",
    "BACKEND": os.environ.get("BETATEL_IT_BACKEND", "locmem"),
    "RATE_LIMIT_EMAIL": os.environ.get("BETATEL_IT_RATE_LIMIT_EMAIL", "5/h"),
    "RATE_LIMIT_IP": os.environ.get("BETATEL_IT_RATE_LIMIT_IP") or None,
    # The load test (bench/load.py) serves these settings with gunicorn: it
    # spreads clients over IPs with X-Forwarded-For and calls a fake Betatel
    # over TLS signed by a throw-away CA.
    "CLIENT_IP_HEADER": os.environ.get("BETATEL_IT_CLIENT_IP_HEADER") or None,
    "CA_BUNDLE": os.environ.get("BETATEL_IT_CA_BUNDLE") or None,
}
