"""A fake Betatel API on 127.0.0.1 for tests, able to misbehave on demand.

    with FakeBetatelServer(token="t", unknown_emails={"ghost@example.com"}) as fake:
        settings.BETATEL_RESET = {"API_URL": fake.url, "TOKEN": "t"}
        fake.behave(Behaviour.status(503, retry_after=2))  # the next request only
        ...
        assert fake.requests[0].json == {"email": "ada@example.com"}

Standard library only; ``make_tls_context()`` needs ``trustme``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import ssl
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

__all__ = [
    "RESEND_PATH",
    "Behaviour",
    "FakeBetatelServer",
    "RecordedRequest",
    "make_tls_context",
    "unused_port_url",
]

RESEND_PATH = "/api/auth/reset-password/resend"

_HOST = "127.0.0.1"
_MAX_BODY = 1024 * 1024
_CHUNK = 64 * 1024
_HANDSHAKE_TIMEOUT = 5.0

BehaviourKind = Literal["status", "html", "invalid_json", "slow", "close", "huge", "redirect"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake server received it. Its repr leaves out headers and body."""

    method: str
    path: str
    headers: dict[str, str] = field(repr=False)  # lower-cased names
    body: bytes = field(repr=False)
    json: Any | None  # the parsed body, or None when it is not JSON

    @property
    def bearer(self) -> str | None:
        """The token after ``Bearer `` in the Authorization header, if any."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return (token.strip() or None) if scheme.lower() == "bearer" else None


@dataclass(frozen=True)
class Behaviour:
    """How to answer one request instead of the real contract; build with the factories."""

    kind: BehaviourKind
    code: int = 200
    body: Any = None
    retry_after: int | str | None = None
    seconds: float = 0.0
    size: int = 0
    location: str = ""

    @classmethod
    def status(
        cls, code: int, *, body: Any = None, retry_after: int | str | None = None
    ) -> Behaviour:
        """Answer ``code`` with a JSON ``body`` (default ``{"message": <reason>}``)."""
        return cls("status", code=code, body=body, retry_after=retry_after)

    @classmethod
    def html(cls, status: int = 200) -> Behaviour:
        """Answer an HTML page, as a proxy or load balancer would."""
        return cls("html", code=status)

    @classmethod
    def invalid_json(cls) -> Behaviour:
        """Answer 200 ``application/json`` with a body that is not JSON."""
        return cls("invalid_json")

    @classmethod
    def slow(cls, seconds: float) -> Behaviour:
        """Wait ``seconds``, then answer per the real contract."""
        if seconds < 0:
            raise ValueError("seconds must not be negative.")
        return cls("slow", seconds=seconds)

    @classmethod
    def close(cls) -> Behaviour:
        """Read the request, then close the connection without answering."""
        return cls("close")

    @classmethod
    def huge(cls, size_bytes: int) -> Behaviour:
        """Answer 200 with a JSON-ish body of ``size_bytes``, streamed in chunks."""
        if size_bytes < 0:
            raise ValueError("size_bytes must not be negative.")
        return cls("huge", size=size_bytes)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Behaviour:
        """Redirect to ``location``."""
        return cls("redirect", code=status, location=location)


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
    ) -> None:
        self.token = token  # None accepts any or no bearer token
        self.ssl_context = ssl_context
        self.ca_bundle = ca_bundle  # for clients' ``verify=`` when serving TLS
        self.latency = latency
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


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeBetatelServer) -> None:
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((_HOST, 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() would look the host name up (getfqdn); skip that.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = _HOST, self.server_address[1]

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        with self.fake._lock:
            self.fake.connections_accepted += 1
        return conn, address

    def finish_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # Runs in the connection's own thread, so a slow TLS handshake blocks no one else.
        if not isinstance(request, socket.socket):
            raise TypeError("FakeBetatelServer only speaks TCP.")
        conn = request
        self._track(request)
        try:
            if self.fake.ssl_context is not None:
                request.settimeout(_HANDSHAKE_TIMEOUT)
                conn = self.fake.ssl_context.wrap_socket(
                    request, server_side=True, do_handshake_on_connect=False
                )
                self._track(conn)
                conn.do_handshake()
            if not self.fake._stopping.is_set():
                _Handler(conn, client_address, self)
        finally:
            with self._open_lock:
                self._open.difference_update({request, conn})
            if conn is not request:
                self.shutdown_request(conn)

    def _track(self, conn: socket.socket) -> None:
        with self._open_lock:
            self._open.add(conn)

    def close_connections(self) -> None:
        """Shut open connections down, waking handlers blocked on a keep-alive read."""
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # The client went away, timed out or failed the TLS handshake: nothing to report.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60.0  # idle keep-alive connections
    disable_nagle_algorithm = True  # headers and body go in separate writes
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:  # unreadable framing: not recorded, answered 400, closed
            self.close_connection = True
            self._send_json(HTTPStatus.BAD_REQUEST, {"message": "Bad request"})
            return
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        request = RecordedRequest(self.command, self.path, headers, body, parsed)
        fake = self.server.fake
        behaviour = fake._receive(request)
        if not fake._pause(fake.latency):
            self.close_connection = True
            return
        if behaviour is None:
            self._answer_contract(request)
        else:
            self._answer(behaviour, request)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def _answer(self, behaviour: Behaviour, request: RecordedRequest) -> None:
        fake = self.server.fake
        match behaviour.kind:
            case "status":
                code = behaviour.code
                body = {"message": _reason(code)} if behaviour.body is None else behaviour.body
                extra = (
                    {} if behaviour.retry_after is None else {"Retry-After": behaviour.retry_after}
                )
                self._send_json(code, body, extra)
            case "html":
                reason = _reason(behaviour.code)
                page = (
                    f"<!DOCTYPE html><html><head><title>{behaviour.code} {reason}</title></head>"
                    f"<body><h1>{reason}</h1></body></html>"
                )
                self._send(behaviour.code, page.encode(), "text/html; charset=utf-8")
            case "invalid_json":
                self._send(HTTPStatus.OK, b'{"message": "Reset password', "application/json")
            case "slow":
                if fake._pause(behaviour.seconds):
                    self._answer_contract(request)
                else:
                    self.close_connection = True
            case "close":
                self.close_connection = True
            case "huge":
                self._send_huge(behaviour.size)
            case "redirect":
                self._send_json(
                    behaviour.code,
                    {"message": _reason(behaviour.code)},
                    {"Location": behaviour.location},
                )

    def _answer_contract(self, request: RecordedRequest) -> None:
        status, message = self.server.fake._contract(request)
        allow: dict[str, str | int] = {}
        if status is HTTPStatus.METHOD_NOT_ALLOWED:
            allow["Allow"] = "POST"
        self._send_json(status, {"message": message}, allow)

    def _send_json(
        self, code: int, payload: Any, headers: dict[str, str | int] | None = None
    ) -> None:
        self._send(code, json.dumps(payload).encode(), "application/json", headers)

    def _send(
        self,
        code: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str | int] | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_huge(self, size: int) -> None:
        head, tail = b'{"padding": "', b'"}'
        if size < len(head) + len(tail):
            head, tail = b"", b""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command == "HEAD":
            return
        filler = b"x" * _CHUNK
        remaining = size - len(head) - len(tail)
        stopping = self.server.fake._stopping
        try:
            self.wfile.write(head)
            while remaining > 0 and not stopping.is_set():
                chunk = filler[: min(remaining, _CHUNK)]
                self.wfile.write(chunk)
                remaining -= len(chunk)
            self.wfile.write(tail)
        except OSError:  # BrokenPipe/ConnectionReset: the client stopped reading
            self.close_connection = True
        if stopping.is_set():
            self.close_connection = True

    def _read_body(self) -> bytes | None:
        """The request body, or None when its framing is broken or it is too large."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return None
        if not 0 <= length <= _MAX_BODY:
            return None
        body = self.rfile.read(length)
        return body if len(body) == length else None  # None: the client went away

    def _read_chunked(self) -> bytes | None:
        body = bytearray()
        while True:
            try:
                size = int(self.rfile.readline(1024).split(b";")[0], 16)
            except ValueError:
                return None
            if size == 0:
                break
            if len(body) + size > _MAX_BODY:
                return None
            body += self.rfile.read(size)
            self.rfile.readline(1024)  # the CRLF after each chunk
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return bytes(body)


def _reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"
