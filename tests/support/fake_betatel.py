"""Fixtures starting a fake Betatel API on 127.0.0.1 (see ``betatel_reset.testing``)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

from betatel_reset.testing import FakeBetatelServer, make_tls_context

__all__ = ["fake_betatel", "fake_betatel_tls", "fake_betatel_tls_context"]

FAKE_BETATEL_TOKEN = "fake-token-for-tests"


@pytest.fixture(scope="session")
def fake_betatel_tls_context() -> tuple[ssl.SSLContext, str]:
    """A throw-away CA and server certificate, made once: (server context, CA bundle path)."""
    return make_tls_context()


@pytest.fixture
def fake_betatel() -> Iterator[FakeBetatelServer]:
    """A fake Betatel API over plain HTTP; ``fake_betatel.url`` is its base URL."""
    with FakeBetatelServer(token=FAKE_BETATEL_TOKEN) as server:
        yield server


@pytest.fixture
def fake_betatel_tls(
    fake_betatel_tls_context: tuple[ssl.SSLContext, str],
) -> Iterator[FakeBetatelServer]:
    """A fake Betatel API over HTTPS; pass ``server.ca_bundle`` as the client's ``verify=``."""
    context, ca_bundle = fake_betatel_tls_context
    with FakeBetatelServer(
        token=FAKE_BETATEL_TOKEN, ssl_context=context, ca_bundle=ca_bundle
    ) as server:
        yield server
