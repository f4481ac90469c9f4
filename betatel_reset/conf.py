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
"""

from __future__ import annotations

import functools
import math
import os
import re
import ssl
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload
from urllib.parse import urlsplit

from django.conf import settings

from .exceptions import InvalidSetting

SETTINGS_NAME = "BETATEL_RESET"

T = TypeVar("T")


@dataclass(frozen=True)
class Kind(Generic[T]):
    """What a setting's value must be.

    ``convert`` returns the value the app uses, or raises ``ValueError`` when
    the value is not ``what``; the error's text, when it has one, is a detail
    worth adding to the message.
    """

    what: str
    hint: str
    convert: Callable[[Any], T]


# White space and control characters: never part of a URL, a path or a token.
_UNPRINTABLE = re.compile(r"[\s\x00-\x1f\x7f]")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # what a bearer token can be in a header
_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")  # an alias or a dotted path
_DOTTED_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
_META_KEY = re.compile(r"[A-Z][A-Z0-9_]*")
_HEADER_NAME = re.compile(r"[A-Za-z0-9_-]+")
_URL_CREDENTIALS = re.compile(r"//[^/@\s]*@")


def _or_none(convert: Callable[[Any], T]) -> Callable[[Any], T | None]:
    """``None`` turns the setting off; so does an empty string, which is what
    an unset environment variable often becomes."""

    def convert_or_none(value: Any) -> T | None:
        if value is None or (isinstance(value, str) and value == ""):
            return None
        return convert(value)

    return convert_or_none


def _number(value: Any) -> float:
    """An int or a float (not a bool, not a string), finite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError()
    try:
        number = float(value)
    except OverflowError:
        raise ValueError("it is too large") from None
    if not math.isfinite(number):
        raise ValueError()
    return number


def _seconds(value: Any) -> float:
    number = _number(value)
    if number <= 0:
        raise ValueError()
    return number


def _wait_seconds(value: Any) -> float:
    number = _number(value)
    if number < 0:
        raise ValueError()
    return number


def _whole(value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError()
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError()
    return value


def _rate(value: Any) -> str:
    from .ratelimit import parse_rate  # not at the top: ratelimit reads this module

    if not isinstance(value, str):
        raise ValueError()
    try:
        parse_rate(value)
    except ValueError:
        raise ValueError() from None
    return value


def _http_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError()
    return _checked_http_url(value)


@functools.lru_cache(maxsize=8)
def _checked_http_url(value: str) -> str:
    if _UNPRINTABLE.search(value):
        raise ValueError()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (an out-of-range or non-numeric port raises ValueError)
    except ValueError:
        raise ValueError() from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError()
    if parts.username is not None or parts.password is not None:
        raise ValueError("a user name or password in the URL would replace the API token")
    if parts.query or parts.fragment:
        raise ValueError("it has a query string or a fragment")
    return value.rstrip("/")


def _url_path(value: Any) -> str:
    if not isinstance(value, str) or _UNPRINTABLE.search(value) or "?" in value or "#" in value:
        raise ValueError()
    return "/" + value.lstrip("/")


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError()
    return value


def _alias(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError()
    return value


def _token(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError()
    if not _TOKEN.fullmatch(value):
        raise ValueError("it holds white space, a line break or a non-ASCII character")
    return value


def _provider(value: Any) -> Any:
    if callable(value):
        return value
    if isinstance(value, str) and _DOTTED_PATH.fullmatch(value):
        return value
    raise ValueError()


def _ca_bundle(value: Any) -> str:
    if not isinstance(value, str | os.PathLike):
        raise ValueError()
    path = os.fsdecode(value)
    try:
        status = os.stat(path)
    except OSError as exc:
        raise ValueError(str(exc.strerror or "it cannot be read").lower()) from None
    if stat.S_ISDIR(status.st_mode):  # a folder of hashed certificates (c_rehash)
        if not os.access(path, os.R_OK | os.X_OK):
            raise ValueError("the folder cannot be read")
        return path
    _load_certificates(path, status.st_mtime_ns, status.st_size)
    return path


@functools.lru_cache(maxsize=8)
def _load_certificates(path: str, mtime_ns: int, size: int) -> None:
    """Check that ``path`` holds certificates, once per version of the file."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=path)
    except ssl.SSLError:
        raise ValueError("the file holds no PEM certificates") from None
    except OSError as exc:
        raise ValueError(str(exc.strerror or "it cannot be read").lower()) from None


def _meta_key(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError()
    if _META_KEY.fullmatch(value):
        return value
    if _HEADER_NAME.fullmatch(value):
        key = value.upper().replace("-", "_")
        if not key.startswith("HTTP_"):
            key = f"HTTP_{key}"
        raise ValueError(f"request.META holds that header as {key!r}")
    raise ValueError()


def _cache_alias(value: Any) -> str:
    caches: dict[str, Any] = getattr(settings, "CACHES", {})
    if not isinstance(value, str) or value not in caches:
        configured = ", ".join(repr(alias) for alias in caches) or "none"
        raise ValueError(f"settings.CACHES has {configured}")
    return value


def _texts(value: Any) -> dict[str, Any]:
    # Leniently: texts are read while rendering any page, and check E006 says
    # what is wrong with MESSAGES, key by key.
    return value if isinstance(value, dict) else {}


SECONDS = Kind(
    "a number of seconds above 0",
    "Write a number such as 3.05 (an int or a float, not a string).",
    _seconds,
)
WAIT_SECONDS = Kind(
    "a number of seconds, 0 or more",
    "Write a number such as 3.0 (an int or a float, not a string); 0 never waits.",
    _wait_seconds,
)
COUNT = Kind(
    "a whole number, 0 or more",
    "Write an int such as 2 (not a string).",
    functools.partial(_whole, minimum=0),
)
POSITIVE_COUNT = Kind(
    "a whole number above 0",
    "Write an int such as 8 (not a string).",
    functools.partial(_whole, minimum=1),
)
FLAG = Kind("True or False", "Write True or False (not a string or a number).", _flag)
RATE = Kind(
    "a rate such as '3/15m' or '20/h'",
    "Write '<count>/<period>', e.g. '3/15m' or '20/h'; None turns it off.",
    _or_none(_rate),
)
HTTP_URL = Kind(
    "a valid URL",
    "Write an http:// or https:// URL with a host, e.g. 'https://api.betatel.com'.",
    _http_url,
)
URL_PATH = Kind(
    "a URL path",
    "Write a path such as '/api/auth/reset-password/resend' (no spaces, '?' or '#').",
    _url_path,
)
BACKEND_NAME = Kind(
    "a backend alias or a dotted path",
    "Write 'http', 'console', 'locmem' or the dotted path of a BaseBackend subclass.",
    _name,
)
TOKEN_TEXT = Kind(
    "an API token an HTTP header can carry",
    "Set the token as a string of visible ASCII characters; strip what was copied with it.",
    _or_none(_token),
)
PROVIDER = Kind(
    "a dotted path to a callable, or a callable",
    "Write the dotted path of a function such as 'myapp.betatel.get_token'; "
    "None uses the static TOKEN.",
    _or_none(_provider),
)
CA_BUNDLE_PATH = Kind(
    "a readable CA bundle",
    "Give the path of a PEM file of CA certificates (or a folder of them); "
    "None uses the system's trusted CAs.",
    _or_none(_ca_bundle),
)
META_KEY = Kind(
    "a request.META key",
    "Write the key Django gives the header, e.g. 'HTTP_X_FORWARDED_FOR' for "
    "X-Forwarded-For; None uses REMOTE_ADDR.",
    _or_none(_meta_key),
)
CACHE_NAME = Kind(
    "an alias of settings.CACHES",
    "Name one of settings.CACHES (default: 'default').",
    _cache_alias,
)
TASK_BACKEND_NAME = Kind(
    "an alias of settings.TASKS",
    "Name one of settings.TASKS (default: 'default').",
    _alias,
)
TEXTS = Kind("a dict of texts by key", "See betatel_reset/texts.py for the keys.", _texts)


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
    # Public pages.
    PREVENT_ENUMERATION = Setting(True, FLAG)
    RATE_LIMIT_EMAIL = Setting("3/15m", RATE)
    RATE_LIMIT_IP = Setting("20/h", RATE)
    CLIENT_IP_HEADER = Setting(None, META_KEY)
    CACHE_ALIAS = Setting("default", CACHE_NAME)
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
        reports stops it before anything is counted or sent.
        """
        errors = self.errors()
        if errors:
            raise errors[0]

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
