"""The fake Betatel server: start, stop, script its answers, read what it got."""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import ssl
import tempfile
import threading
from collections import deque
from collections.abc import Iterable
from http import HTTPStatus
from types import TracebackType
from urllib.parse import urlsplit

from .behaviours import RESEND_PATH, Behaviour, RecordedRequest
from .wire import _HOST, _HTTPServer


class FakeBetatelServer:
    """A threaded HTTP(S) server on 127.0.0.1 that speaks Betatel's resend contract."""

    def __init__(
        self,
        *,
        token: str | None = "fake-token",  # noqa: S107 (a fake server's fake token)
        ssl_context: ssl.SSLContext | None = None,
        unknown_emails: Iterable[str] = (),
        latency: float = 0.0,
        ca_bundle: str | None = None,
        send_time: float = 0.0,
    ) -> None:
        self.token = token  # None accepts any or no bearer token
        self.ssl_context = ssl_context
        self.ca_bundle = ca_bundle  # for clients' ``verify=`` when serving TLS
        self.latency = latency
        #: Seconds spent "sending the email" before a 200, as the real Betatel
        #: does; an unknown address's 404 is not delayed (it is what a page
        #: that waits for Betatel leaks).
        self.send_time = send_time
        self.requests: list[RecordedRequest] = []
        self.connections_accepted = 0
        self._unknown_emails = frozenset(email.casefold() for email in unknown_emails)
        self._queue: deque[Behaviour] = deque()
        self._sticky: Behaviour | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        if self._httpd is None:
            raise RuntimeError("FakeBetatelServer is not started.")
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{_HOST}:{self._httpd.server_port}"

    def start(self) -> FakeBetatelServer:
        if self._httpd is not None:
            raise RuntimeError("FakeBetatelServer is already started.")
        self._stopping.clear()
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"fake-betatel-{self._httpd.server_port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop open connections; sleeping handlers wake up at once."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> FakeBetatelServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def behave(self, *behaviours: Behaviour) -> None:
        """Queue behaviours, used one per request in order, before the default applies."""
        with self._lock:
            self._queue.extend(behaviours)

    def always(self, behaviour: Behaviour | None) -> None:
        """Use ``behaviour`` whenever the queue is empty; None restores the real contract."""
        with self._lock:
            self._sticky = behaviour

    def reset(self) -> None:
        """Forget recorded requests, queued and sticky behaviours, and latency."""
        with self._lock:
            self.requests.clear()
            self._queue.clear()
            self._sticky = None
            self.latency = 0.0

    def _receive(self, request: RecordedRequest) -> Behaviour | None:
        """Record ``request`` and pick the behaviour that answers it (None: the contract)."""
        with self._lock:
            self.requests.append(request)
            return self._queue.popleft() if self._queue else self._sticky

    def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the server stops meanwhile; True if still running."""
        return not self._stopping.wait(seconds) if seconds > 0 else not self._stopping.is_set()

    def _contract(self, request: RecordedRequest) -> tuple[HTTPStatus, str]:
        """What the real API answers to ``request``: a status and its message."""
        if urlsplit(request.path).path != RESEND_PATH:
            return HTTPStatus.NOT_FOUND, "Not found"
        if request.method != "POST":
            return HTTPStatus.METHOD_NOT_ALLOWED, "Method not allowed"
        if self.token is not None and request.bearer != self.token:
            return HTTPStatus.UNAUTHORIZED, "Unauthorized"
        payload = request.json
        email = payload.get("email") if isinstance(payload, dict) else None
        if not isinstance(email, str) or not email.strip():
            return HTTPStatus.BAD_REQUEST, "Email is required"
        if email.strip().casefold() in self._unknown_emails:
            return HTTPStatus.NOT_FOUND, "User not found"
        return HTTPStatus.OK, "Reset password email sent successfully"


def unused_port_url(scheme: str = "http") -> str:
    """A loopback URL where nothing listens, for the "connection refused" case."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port = sock.getsockname()[1]
    return f"{scheme}://{_HOST}:{port}"


def make_tls_context() -> tuple[ssl.SSLContext, str]:
    """A server context with a throw-away CA's cert for 127.0.0.1/localhost, and a CA
    bundle path for clients' ``verify=`` (removed at exit). Needs ``trustme``."""
    import trustme

    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(_HOST, "localhost").configure_cert(context)
    fd, ca_bundle = tempfile.mkstemp(prefix="fake-betatel-ca-", suffix=".pem")
    with os.fdopen(fd, "wb") as pem:
        pem.write(ca.cert_pem.bytes())
    atexit.register(_remove_file, ca_bundle)
    return context, ca_bundle


def _remove_file(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
