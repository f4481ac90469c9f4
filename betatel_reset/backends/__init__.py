"""Backends deliver a resend, like Django's email backends deliver mail.

``BETATEL_RESET['BACKEND']`` is ``"http"`` (the real API), ``"console"``,
``"locmem"``, or the dotted path of a :class:`BaseBackend` subclass.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.utils.module_loading import import_string

from ..conf import app_settings
from ..exceptions import ConfigurationError

ALIASES = {
    "http": "betatel_reset.backends.http.HttpBackend",
    "console": "betatel_reset.backends.console.ConsoleBackend",
    "locmem": "betatel_reset.backends.locmem.LocmemBackend",
}


@dataclass(frozen=True)
class UpstreamResponse:
    """What Betatel (or a stand-in) answered to a successful resend."""

    status_code: int | None
    message: str


class BaseBackend:
    #: Whether a call without a token is a configuration error.
    requires_token = True

    def send(self, email: str, *, token: str | None) -> UpstreamResponse:
        """Ask for the reset email to be resent, or raise a ``BetatelResetError``."""
        raise NotImplementedError


@functools.lru_cache(maxsize=8)
def _load_backend(path: str) -> BaseBackend:
    dotted = ALIASES.get(path, path)
    try:
        backend_class = import_string(dotted)
    except ImportError as exc:
        raise ConfigurationError(
            f"BETATEL_RESET['BACKEND'] = {path!r} cannot be imported ({exc}); "
            f"use one of {sorted(ALIASES)} or a dotted path to a BaseBackend subclass."
        ) from None
    if not (isinstance(backend_class, type) and issubclass(backend_class, BaseBackend)):
        raise ConfigurationError(
            f"BETATEL_RESET['BACKEND'] = {path!r} is not a betatel_reset BaseBackend subclass."
        )
    return backend_class()


def get_backend(path: str | None = None) -> BaseBackend:
    """The configured backend; instances are shared, so they must be thread-safe."""
    return _load_backend(path or app_settings.BACKEND)
