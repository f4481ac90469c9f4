"""The fake Betatel API behind a simulated network link.

Loopback has no round-trip time, so a benchmark straight against
:class:`~betatel_reset.testing.FakeBetatelServer` would flatter a client that
opens a new connection for every call. :class:`LatencyProxy` sits between the
client and the fake server and models a link with a round-trip time ``rtt``:
every chunk of bytes is delivered ``rtt / 2`` after the kernel received it
(``SO_TIMESTAMPNS``), in either direction, without waiting for the chunks
before it, and a new connection's first client bytes are held one more
``rtt``, the TCP handshake a real ``connect()`` waits for. So a request on a
warm keep-alive connection costs 1 RTT, and one on a new TLS 1.3 connection
3 RTT (TCP, TLS, request). Deliveries sleep, then spin the last 0.3 ms
(``time.sleep`` oversleeps by 0.1-0.2 ms on a VM).

:class:`Upstream` runs the fake over TLS behind the proxy in a child process of
its own, so its threads do not compete with the measured client for the GIL.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import socket
import struct
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from bench.harness import HOST

TOKEN = "bench-token"
SPIN = 0.0003
# Linux's SO_TIMESTAMPNS (and SCM_TIMESTAMPNS): the socket module lacks them.
_SO_TIMESTAMPNS = 35
_ANCILLARY = socket.CMSG_SPACE(16)


class LatencyProxy:
    """A TCP proxy on 127.0.0.1 that adds a round-trip time (see the module doc)."""

    def __init__(self, target: tuple[str, int], rtt: float, spin: float) -> None:
        self.target, self.rtt, self.spin = target, rtt, spin
        self.listener = socket.create_server((HOST, 0), backlog=256)
        self.port = int(self.listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            accepted = time.monotonic()
            threading.Thread(target=self._link, args=(client, accepted), daemon=True).start()

    def _link(self, client: socket.socket, accepted: float) -> None:
        with client, socket.create_connection(self.target, timeout=5) as server:
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # The client could not send a byte before its connect() returned, 1 RTT on.
            up = threading.Thread(target=self._pump, args=(client, server, accepted + self.rtt))
            up.start()
            self._pump(server, client, 0.0)
            up.join()

    def _pump(self, source: socket.socket, sink: socket.socket, not_before: float) -> None:
        """Read ``source`` here; a writer thread delivers each chunk ``rtt / 2`` later."""
        chunks: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()
        writer = threading.Thread(target=self._deliver, args=(chunks, sink))
        writer.start()
        source.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        realtime_offset = time.time() - time.monotonic()
        data = b"-"
        while data:
            try:
                data, ancillary, _flags, _addr = source.recvmsg(64 * 1024, _ANCILLARY)
            except OSError:
                data, ancillary = b"", []
            arrived = time.monotonic()
            for level, kind, value in ancillary:
                if (level, kind) == (socket.SOL_SOCKET, _SO_TIMESTAMPNS):
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    arrived = min(arrived, seconds + nanoseconds / 1e9 - realtime_offset)
            chunks.put((max(arrived, not_before) + self.rtt / 2, data))
        writer.join()

    def _deliver(
        self, chunks: queue.SimpleQueue[tuple[float, bytes]], sink: socket.socket
    ) -> None:
        while True:
            when, data = chunks.get()
            if (delay := when - time.monotonic() - self.spin) > 0:
                time.sleep(delay)
            while time.monotonic() < when:
                pass
            try:
                if not data:  # end of input: pass the half-close on
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
            except OSError:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_RDWR)
                return


def _serve(conn: Connection, rtt: float, latency: float, spin: float) -> None:
    """The child: the fake over TLS, the proxy in front; answers ``requests`` until None."""
    # Threads here mostly sleep or wait on sockets; wake the one whose bytes are due
    # without waiting for the default 5 ms switch interval.
    sys.setswitchinterval(0.0005)
    from betatel_reset.testing import FakeBetatelServer, make_tls_context

    context, ca_bundle = make_tls_context()
    fake = FakeBetatelServer(
        token=TOKEN, ssl_context=context, ca_bundle=ca_bundle, latency=latency
    ).start()
    proxy = LatencyProxy((HOST, int(fake.url.rsplit(":", 1)[1])), rtt, spin)
    conn.send((f"https://{HOST}:{proxy.port}", ca_bundle))
    while conn.recv() is not None:
        conn.send(len(fake.requests))
    fake.stop()  # and the proxy's threads end with this process


class Upstream:
    """The fake Betatel behind a link of ``rtt`` seconds, answering ``latency`` seconds
    after a request arrives; ``url`` is the proxy's, ``ca_bundle`` the CA to trust."""

    def __init__(self, *, rtt: float, latency: float = 0.0, spin: float = SPIN) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._proc = context.Process(target=_serve, args=(child, rtt, latency, spin), daemon=True)
        self.rtt = rtt
        self.url = self.ca_bundle = ""

    def _answer(self) -> Any:
        if not self._conn.poll(30):
            raise RuntimeError("the fake Betatel did not answer")
        return self._conn.recv()

    def __enter__(self) -> Upstream:
        self._proc.start()  # a daemon: stopped when we exit, if not before
        self.url, self.ca_bundle = self._answer()
        return self

    def requests(self) -> int:
        """How many requests the fake has received so far."""
        self._conn.send("requests")
        return int(self._answer())

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(10)
