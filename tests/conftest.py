from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses as responses_lib
from django.core.cache import caches

from betatel_reset.backends import http as http_backend
from betatel_reset.backends import locmem

# fake_betatel, fake_betatel_tls: a fake Betatel API on 127.0.0.1.
pytest_plugins = ["tests.support.fake_betatel"]

ENDPOINT = "https://api.betatel.test/api/auth/reset-password/resend"
TOKEN = "fake-token-for-tests"


@pytest.fixture(autouse=True)
def _isolate() -> Iterator[None]:
    """Each test starts with an empty outbox, empty caches and a new session."""
    locmem.outbox.clear()
    for cache in caches.all():
        cache.clear()
    http_backend.reset_session()
    yield
    locmem.outbox.clear()


@pytest.fixture
def mocked() -> Iterator[responses_lib.RequestsMock]:
    """`responses` at the HTTP boundary; any unexpected call fails the test."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def locmem_backend(settings: Any) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "BACKEND": "locmem"}


def grant(user: Any, *perms: str) -> Any:
    """Give ``user`` the permissions named ``"app_label.codename"``; returns the user."""
    from django.contrib.auth.models import Permission

    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def expect_resends(
    mocked: responses_lib.RequestsMock, *, sent: str | None = None, unknown: str | None = None
) -> None:
    """Betatel accepts a resend to ``sent`` and answers 404 for ``unknown``."""
    from responses import matchers

    if sent is not None:
        mocked.post(
            ENDPOINT,
            json={"message": "Reset password email sent successfully"},
            match=[matchers.json_params_matcher({"email": sent})],
        )
    if unknown is not None:
        mocked.post(
            ENDPOINT,
            status=404,
            json={"message": "User not found"},
            match=[matchers.json_params_matcher({"email": unknown})],
        )


def make_jwt(**claims: Any) -> str:
    """An unsigned, obviously fake JWT carrying ``claims``."""
    import base64
    import json

    def segment(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{segment(claims)}.fake-signature"
