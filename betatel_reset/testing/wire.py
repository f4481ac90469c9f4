"""The HTTP side of the fake Betatel: sockets, TLS, parsing and answering."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any

from .behaviours import Behaviour, RecordedRequest

if TYPE_CHECKING:
    from .server import FakeBetatelServer

_HOST = "127.0.0.1"
_MAX_BODY = 1024 * 1024
_CHUNK = 64 * 1024
_HANDSHAKE_TIMEOUT = 5.0


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
            case "drip":
                status, message = fake._contract(request)
                self._drip(status, {"message": message}, behaviour.seconds, behaviour.drip_head)
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
        fake = self.server.fake
        status, message = fake._contract(request)
        if status is HTTPStatus.OK and not fake._pause(fake.send_time):
            self.close_connection = True
            return
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

    def _drip(self, code: int, payload: Any, interval: float, head: bool) -> None:
        """Answer ``payload`` one byte every ``interval`` seconds: the body, or
        with ``head`` the whole answer, status line first."""
        body = json.dumps(payload).encode()
        start = (
            f"{self.protocol_version} {code} {_reason(code)}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        fake = self.server.fake
        try:
            if not head:
                self.wfile.write(start)
            for byte in start + body if head else body:
                if not fake._pause(interval):
                    self.close_connection = True
                    return
                self.wfile.write(bytes([byte]))
        except OSError:  # the client gave up waiting
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
