"""The real call to Betatel: the only module in the app that talks HTTP.

Calls go through ``requests.Session.post`` on one pooled session per backend,
which a site can build itself (:meth:`HttpBackend.create_session`). An earlier
version copied a request prepared once and handed it to the connection pool,
skipping what ``Session.post`` merges on every call; that saved about 0.4 ms
per call (benchmark 1 in ``docs/benchmarks.md``: 22.46 against 22.88 ms at a
20 ms round trip, under 2 %), but a session a site customises would then have
been half ignored (its headers, proxies, hooks). The plain call is kept.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import weakref
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING, Any

import requests
from django.views.decorators.debug import sensitive_variables
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

from .. import __version__
from ..conf import app_settings
from ..exceptions import (
    AddressRejected,
    AuthenticationFailed,
    BetatelResetError,
    ConfigurationError,
    OutcomeUnknown,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from . import BaseBackend, UpstreamResponse
from .deadline import DeadlineAdapter, _answer_due_by
from .redaction import clean_message

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

USER_AGENT = f"django-betatel-reset/{__version__} python-requests/{requests.__version__}"
# Enough connections for the admin's bounded concurrency without reopening.
POOL_SIZE = 32
# What a bearer token can be in a header: visible ASCII, no white space.
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")

#: Every HttpBackend (one per BACKEND path), so reset_session() reaches them all.
_backends: weakref.WeakSet[HttpBackend] = weakref.WeakSet()


def reset_session() -> None:
    """Close every backend's pooled session; the next call builds a new one
    (after a fork, or in tests)."""
    for backend in list(_backends):
        backend.close()


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


# The deadline holds while the answer is read ----------------------------------
#
# requests' read timeout bounds each read from the socket, not the answer: a
# byte every few seconds keeps every read within it for as long as the sender
# likes, in the body and in the status line and headers alike (http.client
# reads each line in as many reads as it takes). So while a call is under way,
# every read of its answer may only wait for the time left before its deadline.

# The call ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Failed:
    error: BetatelResetError
    #: Seconds to wait before another attempt is allowed; ``None``: no retry.
    wait: float | None = None


def _connection_never_made(exc: requests.RequestException) -> bool:
    """True when no connection was made (refused, unreachable, unknown host):
    Betatel cannot have the request."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)


def _unanswered(exc: requests.RequestException) -> _Failed:
    """What a request that got no answer means: certainly not sent (a retry is
    safe), or perhaps sent (Betatel may have the request: never retried)."""
    if isinstance(exc, requests.ConnectTimeout):
        return _Failed(UpstreamUnavailable("connecting to Betatel timed out"), wait=0.2)
    if isinstance(exc, requests.exceptions.SSLError):  # the handshake, before sending
        return _Failed(UpstreamUnavailable("the TLS handshake with Betatel failed"))
    if _connection_never_made(exc):
        return _Failed(UpstreamUnavailable("could not connect to Betatel"), wait=0.2)
    if isinstance(exc, requests.Timeout):
        return _Failed(OutcomeUnknown("Betatel did not answer in time"))
    return _Failed(OutcomeUnknown("the connection to Betatel failed before an answer arrived"))


def _broken_off(deadline: float) -> str:
    if time.monotonic() >= deadline:
        return "Betatel's answer was still arriving at the deadline"
    return "Betatel's answer broke off before it was complete"


class HttpBackend(BaseBackend):
    """POSTs ``{"email": ...}`` to Betatel exactly as the vendor's example does.

    One pooled session, explicit connect/read timeouts, no redirects, a capped
    response body, and retries only where no duplicate email can result: the
    connection was never made, or Betatel answered 503/429 with a short
    ``Retry-After``. All attempts fit in ``DEADLINE`` seconds.
    """

    def __init__(self) -> None:
        self._session: requests.Session | None = None
        self._session_lock = threading.Lock()
        _backends.add(self)

    def create_session(self) -> requests.Session:
        """The ``requests.Session`` every call shares, built once per process.

        Override it in a subclass (and name that in ``BACKEND``) to mount
        your own adapter (a :class:`DeadlineAdapter` subclass, so that
        ``DEADLINE`` still bounds a slow answer), add a header, hook into
        responses or set a proxy, as with django-anymail's
        ``create_session()``. Whatever is set here applies: calls go through
        ``Session.post``. Keep ``trust_env`` off
        unless you mean the process environment (``HTTPS_PROXY``, ``.netrc``)
        to reach the one request that carries the API token.
        """
        session = requests.Session()
        session.trust_env = False
        # One session serves every user: it keeps no cookie Betatel might set.
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        # Uncompressed answers: MAX_RESPONSE_BYTES then caps what is held in memory.
        session.headers.update(
            {"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Encoding": "identity"}
        )
        adapter = DeadlineAdapter(
            pool_connections=4,
            pool_maxsize=POOL_SIZE,
            max_retries=Retry(total=0, read=False, redirect=False),
        )
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            with self._session_lock:
                if self._session is None:
                    self._session = self.create_session()
        return self._session

    def close(self) -> None:
        """Close the pooled connections; the next call opens new ones."""
        with self._session_lock:
            if self._session is not None:
                self._session.close()
            self._session = None

    @sensitive_variables("token", "headers")
    def send(self, email: str, *, token: str | None) -> UpstreamResponse:
        if token is not None and not _TOKEN_RE.fullmatch(token):
            # Else requests fails on the header (as if Betatel were down) or
            # http.client raises UnicodeEncodeError (a 500). Never quote the token.
            raise ConfigurationError(
                "The Betatel API token holds characters an HTTP header cannot carry "
                "(white space, a line break or a non-ASCII character): check "
                "BETATEL_RESET['TOKEN'], or what the TOKEN_PROVIDER returns."
            )
        url = app_settings.ENDPOINT_URL  # checked by the API_URL setting's kind
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        body = json.dumps({"email": email}).encode()
        deadline = time.monotonic() + app_settings.DEADLINE
        retries_left = app_settings.MAX_RETRIES
        while True:
            result = self._attempt(url, body, headers, deadline, token)
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
        url: str,
        body: bytes,
        headers: dict[str, str],
        deadline: float,
        token: str | None,
    ) -> UpstreamResponse | _Failed:
        """One POST: Betatel's answer on success, else the error and whether a
        retry is allowed.

        Errors are raised outside any ``except`` block (by :meth:`send`), so
        no ``requests`` exception, which holds the prepared request and its
        headers, is ever chained to them.
        """
        remaining = max(0.01, deadline - time.monotonic())
        connect, read = app_settings.CONNECT_TIMEOUT, app_settings.READ_TIMEOUT
        # A slow connect followed by a slow answer must still end by the deadline:
        # when both timeouts do not fit in what is left, both shrink in proportion.
        scale = min(1.0, remaining / (connect + read)) if connect + read > 0 else 1.0
        timeout = (connect * scale, read * scale)
        with _answer_due_by(deadline):
            try:
                response = self.session.post(
                    url,
                    data=body,
                    headers=headers,
                    stream=True,
                    timeout=timeout,
                    allow_redirects=False,
                    # None leaves the session's own (True unless create_session says otherwise).
                    verify=app_settings.CA_BUNDLE,
                    # PROXIES, else the session's own; never the environment's (trust_env off).
                    proxies={"https": p, "http": p} if (p := app_settings.PROXIES) else None,
                )
            except requests.RequestException as exc:
                return _unanswered(exc)
            try:
                content, too_large = self._read_capped(response)
            except requests.RequestException:
                # The head arrived, so Betatel had the request; the rest did not.
                return _Failed(
                    OutcomeUnknown(_broken_off(deadline), status_code=response.status_code)
                )
            finally:
                response.close()
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
