"""The site of ``tests.support.settings.queued`` under gunicorn (two sync workers)
on a new SQLite file (or a scratch PostgreSQL database): for
tests/test_delivery_timing.py and bench/delivery.py."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import NamedTuple
from urllib.parse import urlencode

import requests

from bench.harness import OURS, Served, child_env, csrf_token, gunicorn
from tests.support.real_services import in_django

PAGE = OURS
MIGRATE = "from django.core import management\nmanagement.call_command('migrate', verbosity=0)"


class QueuedSite(NamedTuple):
    env: dict[str, str]  # for task workers and in_django()
    served: Served


@contextlib.contextmanager
def queued_site(
    api_url: str, database: dict[str, str] | None = None, **settings: str
) -> Iterator[QueuedSite]:
    """``settings`` (``DELIVERY="inline"``, ``RESPONSE_FLOOR="0.5"``, ``BACKEND`` …)
    reach the site as ``BETATEL_TEST_<NAME>``; ``database``, the environment of
    a scratch PostgreSQL database, replaces the SQLite file."""
    with tempfile.TemporaryDirectory() as tmp:
        env = child_env(
            **{k: v for k, v in (database or {}).items() if k.startswith("BETATEL_IT_")},
            DJANGO_SETTINGS_MODULE="tests.support.settings.queued",
            BETATEL_TEST_DB=f"{tmp}/db.sqlite3",
            BETATEL_TEST_API_URL=api_url,
            **{f"BETATEL_TEST_{name}": value for name, value in settings.items()},
        )
        in_django(f"{MIGRATE}\nprint(0)", env)
        with gunicorn(env) as served:
            yield QueuedSite(env, served)


def posting(served: Served, email: str = "ada@example.com") -> tuple[str, str]:
    """A form body posting ``email`` to the page, and the cookie its CSRF token needs."""
    with requests.Session() as session:
        token = csrf_token(session, served.url + PAGE)
        body = urlencode({"email": email, "csrfmiddlewaretoken": token})
        return body, f"csrftoken={session.cookies['csrftoken']}"
