"""What each setting's value may be: a :class:`Kind` per sort of value, which
checks a value and turns it into what the app uses. :mod:`betatel_reset.conf`
gives every setting one of them; nothing here reads Django's settings."""

from __future__ import annotations

import functools
import math
import os
import re
import ssl
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import SplitResult, urlsplit

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


def _http_parts(value: str) -> SplitResult:
    """``value`` split, if it is an http(s) URL with a host and a valid port."""
    if _UNPRINTABLE.search(value):
        raise ValueError()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (an out-of-range or non-numeric port raises ValueError)
    except ValueError:
        raise ValueError() from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError()
    return parts


@functools.lru_cache(maxsize=8)
def _checked_http_url(value: str) -> str:
    parts = _http_parts(value)
    if parts.username is not None or parts.password is not None:
        raise ValueError("a user name or password in the URL would replace the API token")
    if parts.query or parts.fragment:
        raise ValueError("it has a query string or a fragment")
    return value.rstrip("/")


def _proxy_url(value: Any) -> str:
    """An http(s) proxy's URL: a host, perhaps a port and credentials, nothing else."""
    if not isinstance(value, str):
        raise ValueError()
    parts = _http_parts(value)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("a proxy URL has no path, query string or fragment")
    return value


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


def _texts(value: Any) -> dict[str, Any]:
    # Leniently: texts are read while rendering any page, and check E006 says
    # what is wrong with MESSAGES, key by key.
    return value if isinstance(value, dict) else {}


SECONDS = Kind(
    "a number of seconds above 0",
    "Write a number such as 3.05 (an int or a float, not a string).",
    _seconds,
)
OPTIONAL_SECONDS = Kind(
    "a number of seconds above 0, or None",
    "Write a number such as 1.0 (an int or a float, not a string); None turns it off.",
    _or_none(_seconds),
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
PROXY_URL = Kind(
    "a proxy URL",
    "Write the URL of your HTTPS proxy, e.g. 'http://proxy.internal:3128' "
    "(user:password@ allowed); None connects directly.",
    _or_none(_proxy_url),
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
TASK_BACKEND_NAME = Kind(
    "an alias of settings.TASKS",
    "Name one of settings.TASKS (default: 'default').",
    _alias,
)
TEXTS = Kind("a dict of texts by key", "See betatel_reset/texts.py for the keys.", _texts)


def choice(*options: str) -> Kind[str]:
    """One of ``options``, written exactly."""

    def convert(value: Any) -> str:
        if value not in options:
            raise ValueError()
        return str(value)

    listed = " or ".join(repr(option) for option in options)
    return Kind(listed, f"Write {listed}.", convert)
