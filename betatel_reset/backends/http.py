"""The real call to Betatel: the only module in the app that talks HTTP."""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from django.views.decorators.debug import sensitive_variables
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

from .. import __version__
from ..conf import app_settings
from ..exceptions import (
    AddressRejected,
    AuthenticationFailed,
    BetatelResetError,
    ConfigurationError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from . import BaseBackend, UpstreamResponse

logger = logging.getLogger(__name__)

USER_AGENT = f"django-betatel-reset/{__version__} python-requests/{requests.__version__}"
# Enough connections for the admin's bounded concurrency without reopening.
POOL_SIZE = 32
# Upstream text is shown to admins and logged: keep it short and printable.
MAX_MESSAGE_LENGTH = 200
# What a bearer token can be in a header: visible ASCII, no white space.
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")

_session: requests.Session | None = None
_session_lock = threading.Lock()


def get_session() -> requests.Session:
    """The process-wide pooled session (keep-alive connections are reused)."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                session = requests.Session()
                # Never read proxy settings or .netrc from the environment: the
                # bearer header is the only credential this session may send.
                session.trust_env = False
                adapter = HTTPAdapter(
                    pool_connections=4,
                    pool_maxsize=POOL_SIZE,
                    max_retries=Retry(total=0, read=False, redirect=False),
                )
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                _session = session
    return _session


@functools.lru_cache(maxsize=8)
def _request_template(url: str) -> requests.PreparedRequest:
    """A POST to ``url`` with every header but the token's, prepared once.

    Each call copies it and adds the body and the bearer header, then hands it
    to the session's adapter (the pool). What ``Session.post`` would add on top,
    merging cookies, environment settings, hooks and redirects, this client
    never uses, and it costs more CPU than the rest of the call.
    """
    template = requests.PreparedRequest()
    template.prepare_method("POST")
    template.prepare_url(url, None)
    template.prepare_headers(
        {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
    )
    return template


def reset_session() -> None:
    """Drop the pooled session (after a fork, or in tests)."""
    global _session
    with _session_lock:
        if _session is not None:
            _session.close()
        _session = None


def clean_message(text: str, *, redact: str | None = None) -> str:
    """Upstream text made safe to log and show to admins: printable, short, and
    without ``redact`` (the token, should Betatel echo it back in an error)."""
    if redact:
        text = text.replace(redact, "[redacted]")
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(printable.split())[:MAX_MESSAGE_LENGTH]


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _connection_never_made(exc: requests.RequestException) -> bool:
    """True when the request certainly did not reach Betatel, so a retry cannot
    send a second email."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and not isinstance(
        exc, requests.exceptions.SSLError
    ):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError)
    return False


@dataclass(frozen=True)
class _Failed:
    error: BetatelResetError
    #: Seconds to wait before another attempt is allowed; ``None``: no retry.
    wait: float | None = None


class HttpBackend(BaseBackend):
    """POSTs ``{"email": ...}`` to Betatel exactly as the vendor's example does.

    One pooled session, explicit connect/read timeouts, no redirects, a capped
    response body, and retries only where no duplicate email can result: the
    connection was never made, or Betatel answered 503/429 with a short
    ``Retry-After``. All attempts fit in ``DEADLINE`` seconds.
    """

    @sensitive_variables("token", "request")
    def send(self, email: str, *, token: str | None) -> UpstreamResponse:
        if token is not None and not _TOKEN_RE.fullmatch(token):
            # Else requests fails on the header (as if Betatel were down) or
            # http.client raises UnicodeEncodeError (a 500). Never quote the token.
            raise ConfigurationError(
                "The Betatel API token holds characters an HTTP header cannot carry "
                "(white space, a line break or a non-ASCII character): check "
                "BETATEL_RESET['TOKEN'], or what the TOKEN_PROVIDER returns."
            )
        try:
            request = _request_template(app_settings.ENDPOINT_URL).copy()
            adapter = get_session().get_adapter(str(request.url))
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
        ):
            raise ConfigurationError(
                f"BETATEL_RESET['API_URL'] is not a valid URL: {app_settings.API_URL!r} "
                "(expected something like 'https://api.betatel.com')."
            ) from None
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
        request.prepare_body(json.dumps({"email": email}).encode(), None)
        deadline = time.monotonic() + app_settings.DEADLINE
        retries_left = app_settings.MAX_RETRIES
        while True:
            result = self._attempt(adapter, request, deadline, token)
            if isinstance(result, UpstreamResponse):
                return result
            wait = result.wait
            if wait is None or retries_left <= 0 or wait >= deadline - time.monotonic() - 0.1:
                raise result.error
            retries_left -= 1
            logger.info("Betatel: %s; retrying in %.1f s", result.error, wait)
            time.sleep(wait)

    # Every variable of this frame and of those beneath it (requests, urllib3,
    # http.client: they all hold the Authorization header) is hidden from
    # Django's error reports.
    @sensitive_variables()
    def _attempt(
        self,
        adapter: BaseAdapter,
        request: requests.PreparedRequest,
        deadline: float,
        token: str | None,
    ) -> UpstreamResponse | _Failed:
        """One POST: Betatel's answer on success, else the error and whether a
        retry is allowed.

        Errors are built outside any ``except`` block so no ``requests``
        exception, which holds the prepared request and its headers, is ever
        chained to them.
        """
        remaining = max(0.01, deadline - time.monotonic())
        connect, read = app_settings.CONNECT_TIMEOUT, app_settings.READ_TIMEOUT
        # A slow connect followed by a slow answer must still end by the deadline:
        # when both timeouts do not fit in what is left, both shrink in proportion.
        scale = min(1.0, remaining / (connect + read)) if connect + read > 0 else 1.0
        timeout = (connect * scale, read * scale)
        failure: str | None = None
        retry_connect = False
        try:
            # No redirects followed, no environment proxies: neither is looked at here.
            response = adapter.send(
                request,
                stream=True,
                timeout=timeout,
                verify=app_settings.CA_BUNDLE or True,
                cert=None,
                proxies={},
            )
            try:
                content, too_large = self._read_capped(response)
            finally:
                response.close()
        except requests.Timeout as exc:
            retry_connect = isinstance(exc, requests.ConnectTimeout)
            failure = (
                "connecting to Betatel timed out"
                if retry_connect
                else ("Betatel did not answer in time")
            )
        except requests.exceptions.SSLError:
            failure = "the TLS handshake with Betatel failed"
        except requests.RequestException as exc:
            retry_connect = _connection_never_made(exc)
            failure = (
                "could not connect to Betatel"
                if retry_connect
                else "the connection to Betatel failed before an answer arrived"
            )
        if failure is not None:
            return _Failed(UpstreamUnavailable(failure), wait=0.2 if retry_connect else None)
        return self._interpret(response, content, too_large, token)

    def _read_capped(self, response: requests.Response) -> tuple[bytes, bool]:
        limit = app_settings.MAX_RESPONSE_BYTES
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=16 * 1024):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return b"", True
        return b"".join(chunks), False

    def _interpret(
        self, response: requests.Response, content: bytes, too_large: bool, token: str | None
    ) -> UpstreamResponse | _Failed:
        status = response.status_code
        message = ""
        data: Any = None
        if not too_large:
            try:
                data = json.loads(content)
            except ValueError:
                data = None
            if isinstance(data, dict) and isinstance(data.get("message"), str):
                message = clean_message(data["message"], redact=token)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        kwargs: dict[str, Any] = {"status_code": status, "upstream_message": message}

        if too_large:
            return _Failed(UpstreamUnavailable("Betatel's answer was too large", **kwargs))
        if 200 <= status < 300:
            if isinstance(data, dict):
                return UpstreamResponse(status_code=status, message=message)
            return _Failed(
                UpstreamUnavailable("Betatel's answer was not the expected JSON", **kwargs)
            )
        if 300 <= status < 400:
            return _Failed(UpstreamUnavailable("Betatel answered with a redirect", **kwargs))
        if status in (401, 403):
            return _Failed(
                AuthenticationFailed(
                    "Betatel rejected the API token (expired, revoked or wrong)", **kwargs
                )
            )
        if status == 429:
            return _Failed(
                UpstreamRateLimited(
                    "Betatel is rate limiting requests", retry_after=retry_after, **kwargs
                ),
                wait=self._retry_wait(retry_after),
            )
        if 400 <= status < 500:
            return _Failed(AddressRejected("Betatel refused the address", **kwargs))
        return _Failed(
            UpstreamUnavailable(
                "Betatel answered with a server error", retry_after=retry_after, **kwargs
            ),
            wait=self._retry_wait(retry_after) if status == 503 else None,
        )

    def _retry_wait(self, retry_after: float | None) -> float | None:
        if retry_after is None or retry_after > app_settings.RETRY_MAX_WAIT:
            return None
        return retry_after
