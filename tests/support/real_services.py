"""Helpers for tests on the real PostgreSQL and Redis.

Without them a plain ``make test`` skips those tests with a reason; with
``BETATEL_REQUIRE_SERVICES=1`` (set by ``.ci/run``) a missing service fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)


def _reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


def require_services() -> None:
    missing = [
        f"{name} on {host}:{port}"
        for name, (host, port) in (("PostgreSQL", PG), ("Redis", REDIS))
        if not _reachable((host, port))
    ]
    if not missing:
        return
    reason = "needs " + " and ".join(missing) + " (start them, or see the README)"
    if os.environ.get("BETATEL_REQUIRE_SERVICES") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@contextmanager
def scratch_database() -> Iterator[dict[str, str]]:
    """A new, migrated PostgreSQL database and Redis key prefix; dropped afterwards.

    Yields the environment a subprocess needs to use them.
    """
    import psycopg

    name = f"betatel_it_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(
        host=PG[0], port=PG[1], user="postgres", dbname="test", autocommit=True
    )
    admin.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.support.settings.postgres_redis",
        "BETATEL_IT_DB_NAME": name,
        "BETATEL_IT_CACHE_PREFIX": name,
        "PYTHONPATH": str(ROOT),
    }
    try:
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--no-input", "-v", "0"],
            env=env,
            cwd=ROOT,
            check=True,
            timeout=120,
        )
        yield env
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
        import redis

        client = redis.Redis(host=REDIS[0], port=REDIS[1], db=15)
        for key in client.scan_iter(f"{name}:*"):
            client.delete(key)
        client.close()


def in_django(code: str, env: dict[str, str]) -> Any:
    """Run ``code`` in a new process with Django set up (settings from ``env``);
    returns the JSON it prints last."""
    result = subprocess.run(
        [sys.executable, "-c", f"import django, json\ndjango.setup()\n{code}"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_scenarios(settings_module: str, path: str) -> None:
    """Run the pytest file ``path`` in its own process with ``settings_module``:
    for what a process can only have once (AUTH_USER_MODEL, installed apps)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--ds={settings_module}",
            path,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
