"""The app's settings: the only module that reads ``django.conf.settings``.

Every setting lives in one dict, ``BETATEL_RESET``, and has one default,
written once in :data:`DEFAULTS`. Values are read on every access so that
``override_settings`` and pytest-django's ``settings`` fixture take effect at
once; anything costly to derive from a value (parsing a rate, importing a
dotted path) is cached by the value itself, not by the moment it was read.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

SETTINGS_NAME = "BETATEL_RESET"

#: Every key ``BETATEL_RESET`` accepts, with its default.
DEFAULTS: dict[str, Any] = {
    # Where and how to call Betatel.
    "API_URL": "https://api.betatel.com",
    "ENDPOINT_PATH": "/api/auth/reset-password/resend",
    "BACKEND": "http",
    "TOKEN": None,
    "TOKEN_PROVIDER": None,
    "CONNECT_TIMEOUT": 3.05,
    "READ_TIMEOUT": 8.0,
    "DEADLINE": 12.0,
    "MAX_RETRIES": 2,
    "RETRY_MAX_WAIT": 3.0,
    "MAX_RESPONSE_BYTES": 64 * 1024,
    "CA_BUNDLE": None,
    # Public pages.
    "PREVENT_ENUMERATION": True,
    "RATE_LIMIT_EMAIL": "3/15m",
    "RATE_LIMIT_IP": "20/h",
    "CLIENT_IP_HEADER": None,
    "CACHE_ALIAS": "default",
    "CACHE_FAILURE": "closed",
    # Upstream outage protection.
    "CIRCUIT_FAILURE_THRESHOLD": 5,
    "CIRCUIT_COOLDOWN": 30.0,
    # Audit trail.
    "AUDIT_ASYNC_COMMIT": True,
    # Admin and bulk sending.
    "ADMIN_ACTION": True,
    "TASK_BACKEND": "default",
    "INLINE_CONCURRENCY": 8,
    "INLINE_MAX_BATCH": 500,
    "TASK_CHUNK_SIZE": 100,
    "TASK_CONCURRENCY": 4,
    "BULK_RETRIES": 3,
    "BULK_MAX_RETRY_WAIT": 60.0,
    # Wording: overrides of betatel_reset.texts, by key.
    "MESSAGES": {},
}


class AppSettings:
    """Typed, lazy access to ``settings.BETATEL_RESET``."""

    def _user_settings(self) -> dict[str, Any]:
        value = getattr(settings, SETTINGS_NAME, None)
        return value if isinstance(value, dict) else {}

    def _get(self, name: str) -> Any:
        return self._user_settings().get(name, DEFAULTS[name])

    @property
    def unknown_keys(self) -> list[str]:
        return sorted(set(self._user_settings()) - set(DEFAULTS))

    @property
    def API_URL(self) -> str:
        return str(self._get("API_URL")).rstrip("/")

    @property
    def ENDPOINT_PATH(self) -> str:
        return "/" + str(self._get("ENDPOINT_PATH")).lstrip("/")

    @property
    def ENDPOINT_URL(self) -> str:
        return self.API_URL + self.ENDPOINT_PATH

    @property
    def BACKEND(self) -> str:
        return str(self._get("BACKEND"))

    @property
    def TOKEN(self) -> str | None:
        value = self._get("TOKEN")
        return str(value) if value else None

    @property
    def TOKEN_PROVIDER(self) -> Any:
        """A dotted path or a callable, or ``None``."""
        return self._get("TOKEN_PROVIDER") or None

    @property
    def CONNECT_TIMEOUT(self) -> float:
        return float(self._get("CONNECT_TIMEOUT"))

    @property
    def READ_TIMEOUT(self) -> float:
        return float(self._get("READ_TIMEOUT"))

    @property
    def DEADLINE(self) -> float:
        return float(self._get("DEADLINE"))

    @property
    def MAX_RETRIES(self) -> int:
        return int(self._get("MAX_RETRIES"))

    @property
    def RETRY_MAX_WAIT(self) -> float:
        return float(self._get("RETRY_MAX_WAIT"))

    @property
    def MAX_RESPONSE_BYTES(self) -> int:
        return int(self._get("MAX_RESPONSE_BYTES"))

    @property
    def CA_BUNDLE(self) -> str | None:
        value = self._get("CA_BUNDLE")
        return str(value) if value else None

    @property
    def PREVENT_ENUMERATION(self) -> bool:
        return bool(self._get("PREVENT_ENUMERATION"))

    @property
    def RATE_LIMIT_EMAIL(self) -> str | None:
        value = self._get("RATE_LIMIT_EMAIL")
        return str(value) if value else None

    @property
    def RATE_LIMIT_IP(self) -> str | None:
        value = self._get("RATE_LIMIT_IP")
        return str(value) if value else None

    @property
    def CLIENT_IP_HEADER(self) -> str | None:
        value = self._get("CLIENT_IP_HEADER")
        return str(value) if value else None

    @property
    def CACHE_ALIAS(self) -> str:
        return str(self._get("CACHE_ALIAS"))

    @property
    def CACHE_FAILURE(self) -> str:
        """``"closed"``: refuse public resends while the cache is down;
        ``"open"``: send them without counting limits."""
        return str(self._get("CACHE_FAILURE"))

    @property
    def cache_backend(self) -> str:
        """The dotted backend path of the cache named by ``CACHE_ALIAS``."""
        caches: dict[str, dict[str, Any]] = getattr(settings, "CACHES", {})
        return str(caches.get(self.CACHE_ALIAS, {}).get("BACKEND", ""))

    @property
    def CIRCUIT_FAILURE_THRESHOLD(self) -> int:
        return int(self._get("CIRCUIT_FAILURE_THRESHOLD"))

    @property
    def CIRCUIT_COOLDOWN(self) -> float:
        return float(self._get("CIRCUIT_COOLDOWN"))

    @property
    def AUDIT_ASYNC_COMMIT(self) -> bool:
        return bool(self._get("AUDIT_ASYNC_COMMIT"))

    @property
    def ADMIN_ACTION(self) -> bool:
        return bool(self._get("ADMIN_ACTION"))

    @property
    def TASK_BACKEND(self) -> str:
        return str(self._get("TASK_BACKEND"))

    @property
    def INLINE_CONCURRENCY(self) -> int:
        return max(1, int(self._get("INLINE_CONCURRENCY")))

    @property
    def INLINE_MAX_BATCH(self) -> int:
        return int(self._get("INLINE_MAX_BATCH"))

    @property
    def TASK_CHUNK_SIZE(self) -> int:
        return max(1, int(self._get("TASK_CHUNK_SIZE")))

    @property
    def TASK_CONCURRENCY(self) -> int:
        return max(1, int(self._get("TASK_CONCURRENCY")))

    @property
    def BULK_RETRIES(self) -> int:
        return max(0, int(self._get("BULK_RETRIES")))

    @property
    def BULK_MAX_RETRY_WAIT(self) -> float:
        return float(self._get("BULK_MAX_RETRY_WAIT"))

    @property
    def MESSAGES(self) -> dict[str, Any]:
        value = self._get("MESSAGES")
        return value if isinstance(value, dict) else {}

    @property
    def DEBUG(self) -> bool:
        return bool(settings.DEBUG)


app_settings = AppSettings()
