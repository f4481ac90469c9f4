"""The app's settings: the only module that reads ``django.conf.settings``.

Every setting lives in one dict, ``BETATEL_RESET``. :class:`AppSettings` lists
each key once, as a :class:`Setting`: its default and its :class:`Kind`, which
says what a value must be and turns it into the value the app uses. From that
one table come the defaults (:data:`DEFAULTS`), the typed attributes
(``app_settings.CONNECT_TIMEOUT`` is a float) and the system checks of every
value (:mod:`betatel_reset.checks`), so a check and a request never disagree
about what is valid.

Values are read on every access so that ``override_settings`` and
pytest-django's ``settings`` fixture take effect at once; anything costly to
derive from a value (parsing a rate, loading a CA bundle) is cached by the
value itself, not by the moment it was read. A value the app cannot use raises
:class:`~betatel_reset.exceptions.InvalidSetting`, a ``ConfigurationError``
that names the setting: a page answers it with a 503, never a 500.

``DELIVERY`` defaults to ``"inline"`` although ``"queued"`` is the one that
hides which accounts exist from the answer's timing: queuing needs a worker
process, and the Tasks framework's default (immediate) backend runs a queued
task in the request anyway, so switching every site silently would change
nothing for most and surprise the rest. Check W006 flags ``"queued"`` on an
immediate backend; the README says when to choose which.
"""

from __future__ import annotations

from typing import Any, Generic, overload

from django.conf import settings

from .exceptions import InvalidSetting
from .setting_kinds import (
    _URL_CREDENTIALS,
    BACKEND_NAME,
    CA_BUNDLE_PATH,
    COUNT,
    FLAG,
    HTTP_URL,
    META_KEY,
    OPTIONAL_SECONDS,
    POSITIVE_COUNT,
    PROVIDER,
    PROXY_URL,
    RATE,
    SECONDS,
    TASK_BACKEND_NAME,
    TEXTS,
    TOKEN_TEXT,
    URL_PATH,
    WAIT_SECONDS,
    Kind,
    T,
    choice,
)

SETTINGS_NAME = "BETATEL_RESET"


def _cache_alias(value: Any) -> str:
    caches: dict[str, Any] = getattr(settings, "CACHES", {})
    if not isinstance(value, str) or value not in caches:
        configured = ", ".join(repr(alias) for alias in caches) or "none"
        raise ValueError(f"settings.CACHES has {configured}")
    return value


CACHE_NAME = Kind(
    "an alias of settings.CACHES",
    "Name one of settings.CACHES (default: 'default').",
    _cache_alias,
)


class Setting(Generic[T]):
    """One key of ``BETATEL_RESET``: its default, written once, and its kind.

    Read from an :class:`AppSettings` instance it gives the current value
    converted by its kind, or raises :class:`InvalidSetting`.
    """

    def __init__(self, default: Any, kind: Kind[T], *, secret: bool = False) -> None:
        self.default = default
        self.kind = kind
        #: Never quote the value in a message (the token).
        self.secret = secret
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Setting[T]: ...

    @overload
    def __get__(self, instance: AppSettings, owner: type) -> T: ...

    def __get__(self, instance: AppSettings | None, owner: type) -> Setting[T] | T:
        if instance is None:
            return self
        return self.convert(instance._get(self.name))

    def convert(self, value: Any) -> T:
        try:
            return self.kind.convert(value)
        except (TypeError, ValueError) as exc:
            message = self.describe(value, str(exc))
        raise InvalidSetting(self.name, message, self.kind.hint)

    def describe(self, value: Any, detail: str = "") -> str:
        """``BETATEL_RESET['X'] is not <what>: got <value> (<type>)[; detail].``"""
        kind = type(value).__name__
        if not self.secret:
            shown = f"{_short_repr(value)} ({kind})"
        elif isinstance(value, str):
            shown = f"a str of {len(value)} characters"
        else:
            shown = f"a value of type {kind}"
        message = f"{SETTINGS_NAME}['{self.name}'] is not {self.kind.what}: got {shown}"
        return f"{message}; {detail}." if detail else f"{message}."


def _short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)``, shortened, with any password in a URL left out."""
    text = _URL_CREDENTIALS.sub("//***@", repr(value))
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


class AppSettings:
    """Typed, lazy access to ``settings.BETATEL_RESET``, one :class:`Setting` a key."""

    #: A copy of the last ``BETATEL_RESET`` :meth:`validate` found usable.
    _usable: tuple[Any] | None = None

    # Where and how to call Betatel.
    API_URL = Setting("https://api.betatel.com", HTTP_URL)
    ENDPOINT_PATH = Setting("/api/auth/reset-password/resend", URL_PATH)
    BACKEND = Setting("http", BACKEND_NAME)
    TOKEN = Setting(None, TOKEN_TEXT, secret=True)
    TOKEN_PROVIDER = Setting(None, PROVIDER)
    CONNECT_TIMEOUT = Setting(3.05, SECONDS)
    READ_TIMEOUT = Setting(8.0, SECONDS)
    DEADLINE = Setting(12.0, SECONDS)
    MAX_RETRIES = Setting(2, COUNT)
    RETRY_MAX_WAIT = Setting(3.0, WAIT_SECONDS)
    MAX_RESPONSE_BYTES = Setting(64 * 1024, POSITIVE_COUNT)
    CA_BUNDLE = Setting(None, CA_BUNDLE_PATH)
    PROXIES = Setting(None, PROXY_URL, secret=True)  # its URL may hold a password
    # Public pages.
    PREVENT_ENUMERATION = Setting(True, FLAG)
    RATE_LIMIT_EMAIL = Setting("3/15m", RATE)
    RATE_LIMIT_IP = Setting("20/h", RATE)
    CLIENT_IP_HEADER = Setting(None, META_KEY)
    CACHE_ALIAS = Setting("default", CACHE_NAME)
    CACHE_FAILURE = Setting("closed", choice("closed", "open"))
    # Inside a site's layout: what the pages draw themselves.
    PAGE_MAIN = Setting(True, FLAG)
    PAGE_MESSAGES = Setting(True, FLAG)
    # How the public pages deliver a resend. "inline" (the default) waits for
    # Betatel's answer in the request, as every release before did; "queued"
    # answers once the send is in TASK_BACKEND's queue, so known and unknown
    # accounts take the same time and a slow Betatel holds no web worker. Not
    # the default: it needs a worker process, and on the framework's default
    # (immediate) backend it would silently run inline again (check W006).
    DELIVERY = Setting("inline", choice("inline", "queued"))
    # Inline only: pad the answer to a sent or unknown address to this many seconds.
    RESPONSE_FLOOR = Setting(None, OPTIONAL_SECONDS)
    # Queued only: how long after queuing a send may still be retried, when
    # retrying cannot send a second email.
    QUEUED_RETRY_WINDOW = Setting(120.0, WAIT_SECONDS)
    # Upstream outage protection.
    CIRCUIT_FAILURE_THRESHOLD = Setting(5, POSITIVE_COUNT)
    CIRCUIT_COOLDOWN = Setting(30.0, SECONDS)
    # Audit trail.
    AUDIT_ASYNC_COMMIT = Setting(True, FLAG)
    # Admin and bulk sending.
    ADMIN_ACTION = Setting(True, FLAG)
    TASK_BACKEND = Setting("default", TASK_BACKEND_NAME)
    INLINE_CONCURRENCY = Setting(8, POSITIVE_COUNT)
    INLINE_MAX_BATCH = Setting(500, POSITIVE_COUNT)
    TASK_CHUNK_SIZE = Setting(100, POSITIVE_COUNT)
    TASK_CONCURRENCY = Setting(4, POSITIVE_COUNT)
    BULK_RETRIES = Setting(3, COUNT)
    BULK_MAX_RETRY_WAIT = Setting(60.0, WAIT_SECONDS)
    BULK_STALE_AFTER = Setting(60.0, SECONDS)
    BULK_RATE = Setting(None, RATE)
    # Wording: overrides of betatel_reset.texts, by key (checked by E006).
    MESSAGES = Setting({}, TEXTS)

    @classmethod
    def table(cls) -> dict[str, Setting[Any]]:
        """Every setting, by key, in the order above."""
        return {name: value for name, value in vars(cls).items() if isinstance(value, Setting)}

    def _user_settings(self) -> dict[str, Any]:
        value = getattr(settings, SETTINGS_NAME, None)
        return value if isinstance(value, dict) else {}

    def _get(self, name: str) -> Any:
        """The raw value: the site's, else the default."""
        return self._user_settings().get(name, DEFAULTS[name])

    @property
    def unknown_keys(self) -> list[str]:
        return sorted(set(self._user_settings()) - set(DEFAULTS))

    def errors(self) -> list[InvalidSetting]:
        """Every value the app cannot use, in the table's order; empty when all is well."""
        found: list[InvalidSetting] = []
        value = getattr(settings, SETTINGS_NAME, None)
        if value is not None and not isinstance(value, dict):
            found.append(
                InvalidSetting(
                    SETTINGS_NAME,
                    f"settings.{SETTINGS_NAME} is not a dict: got {type(value).__name__}.",
                    "Write BETATEL_RESET = {...} with the keys of the settings reference.",
                )
            )
        for name in self.table():
            try:
                getattr(self, name)
            except InvalidSetting as exc:
                found.append(exc)
        return found

    def usable(self, *names: str) -> bool:
        """Whether every named setting has a value the app can use."""
        try:
            for name in names:
                getattr(self, name)
        except InvalidSetting:
            return False
        return True

    def validate(self) -> None:
        """Raise :class:`InvalidSetting` for the first value the app cannot use.

        The service calls this before a resend, so a value a system check
        reports stops it before anything is counted or sent. Settings found
        usable are not checked again while ``BETATEL_RESET`` holds the same
        values (a kind's check depends on the value alone, but for
        ``CA_BUNDLE``'s file, which is looked at every time): this runs before
        every address of a bulk send, and checking every setting each time
        cost more than the ledger's statements.
        """
        current = getattr(settings, SETTINGS_NAME, None)
        if self._usable is not None and self._usable[0] == current:
            _ = self.CA_BUNDLE  # its file may have gone since
            return
        errors = self.errors()
        if errors:
            raise errors[0]
        self._usable = (dict(current) if isinstance(current, dict) else current,)

    @property
    def ENDPOINT_URL(self) -> str:
        return self.API_URL + self.ENDPOINT_PATH

    @property
    def cache_backend(self) -> str:
        """The dotted backend path of the cache named by ``CACHE_ALIAS``."""
        caches: dict[str, dict[str, Any]] = getattr(settings, "CACHES", {})
        return str(caches.get(self.CACHE_ALIAS, {}).get("BACKEND", ""))

    @property
    def DEBUG(self) -> bool:
        return bool(settings.DEBUG)


#: Every key ``BETATEL_RESET`` accepts, with its default.
DEFAULTS: dict[str, Any] = {name: setting.default for name, setting in AppSettings.table().items()}

app_settings = AppSettings()
