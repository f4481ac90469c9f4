"""Where the Betatel API token comes from, and what can be read from it.

A site either sets a static ``TOKEN`` or names a ``TOKEN_PROVIDER``: a callable
``provider(request, *, refresh=False) -> str | None``. The provider is given the
current request (``None`` outside one) so it can hand back a per-user token kept
in the session, or a service token it mints and caches. After a 401 the app asks
it once more with ``refresh=True``; a provider that takes no ``refresh``
argument is simply called again.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import inspect
import json
import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.utils.module_loading import import_string

from .conf import app_settings
from .exceptions import ConfigurationError

logger = logging.getLogger(__name__)

TokenProvider = Callable[..., "str | None"]


@functools.lru_cache(maxsize=16)
def _load_provider(path: str) -> TokenProvider:
    try:
        provider = import_string(path)
    except ImportError as exc:
        raise ConfigurationError(
            f"BETATEL_RESET['TOKEN_PROVIDER'] = {path!r} cannot be imported: {exc}"
        ) from None
    if not callable(provider):
        raise ConfigurationError(f"BETATEL_RESET['TOKEN_PROVIDER'] = {path!r} is not callable.")
    return provider  # type: ignore[no-any-return]


def get_provider() -> TokenProvider | None:
    """The configured provider callable, or ``None`` for a static token."""
    provider: Any = app_settings.TOKEN_PROVIDER
    if provider is None:
        return None
    if isinstance(provider, str):
        return _load_provider(provider)
    if callable(provider):
        return provider  # type: ignore[no-any-return]
    raise ConfigurationError(
        "BETATEL_RESET['TOKEN_PROVIDER'] must be a dotted path to a callable or a callable."
    )


@functools.lru_cache(maxsize=16)
def _accepts_refresh(provider: TokenProvider) -> bool:
    try:
        parameters = inspect.signature(provider).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "refresh" or p.kind is p.VAR_KEYWORD for p in parameters)


def get_token(request: HttpRequest | None = None, *, refresh: bool = False) -> str | None:
    """The token to send, from the provider if there is one, else the static setting."""
    provider = get_provider()
    if provider is None:
        return None if refresh else app_settings.TOKEN
    failed: str | None = None
    try:
        token = (
            provider(request, refresh=True)
            if refresh and _accepts_refresh(provider)
            else provider(request)
        )
    except ConfigurationError:
        raise
    except Exception as exc:
        # A broken provider is the site's configuration problem: the pages
        # answer 503, not 500. Its traceback goes to the log, not to callers.
        logger.exception("BETATEL_RESET['TOKEN_PROVIDER'] raised %s", type(exc).__name__)
        failed = type(exc).__name__
    if failed is not None:
        raise ConfigurationError(
            f"BETATEL_RESET['TOKEN_PROVIDER'] raised {failed}; see the log for its traceback."
        )
    return str(token) if token else None


def can_refresh() -> bool:
    return app_settings.TOKEN_PROVIDER is not None


def jwt_expiry(token: str) -> datetime.datetime | None:
    """The ``exp`` claim of a JWT as an aware UTC datetime, or ``None``.

    The signature cannot be checked here (the key is Betatel's); the claim is
    only read to explain an expiry, never to trust the token.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    try:
        return datetime.datetime.fromtimestamp(exp, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def mask_token(token: str | None) -> str:
    """A stand-in safe to print: the length and nothing of the value."""
    if not token:
        return "<no token>"
    return f"<redacted, {len(token)} characters>"
