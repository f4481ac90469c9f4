"""The fake Betatel API behind a simulated network link.

Loopback has no round-trip time, so a benchmark straight against
:class:`~betatel_reset.testing.FakeBetatelServer` would flatter a client that
opens a new connection for every call. :class:`LatencyProxy` sits between the
client and the fake server and models a link with a round-trip time ``rtt``:

* every chunk of bytes is delivered ``rtt / 2`` after it was sent, in either
  direction (chunks keep their order and do not wait for one another, as
  packets in flight do);
* the client's first bytes on a connection are held for one more ``rtt``,
  the TCP handshake a real ``connect()`` waits for;
* the fake server can add think time of its own (``--latency-ms``).

So a request on a warm keep-alive connection costs 1 RTT, and one on a new
TLS 1.3 connection 3 RTT (TCP handshake, TLS handshake, request). Each delay
counts from the kernel's arrival timestamp (``SO_TIMESTAMPNS``), not from when
a thread woke up to read the bytes, and ends in a thread that sleeps, then
spins the last 0.3 ms (accurate to microseconds; not an event loop's
millisecond timer).

``python -m bench.upstream --rtt-ms 20`` serves the fake over TLS behind the
proxy in its own process (so its threads do not compete with the measured
client for the GIL) and prints one JSON line: ``url``, ``ca_bundle``. Each
line read from stdin is answered with the statistics so far; at end of input
it exits. :class:`Upstream` drives it from a benchmark.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from types import TracebackType
from typing import Any

from bench.harness import HOST, PYTHON, ROOT, child_env, stop_process

TOKEN = "bench-token"
_CHUNK = 64 * 1024
# Linux's SO_TIMESTAMPNS (the ancillary message has the same number); the
# socket module does not export it.
_SO_TIMESTAMPNS = _SCM_TIMESTAMPNS = 35
_ANCILLARY = socket.CMSG_SPACE(16)
#: How long before a delivery is due ``_sleep_until`` stops sleeping and spins.
_SPIN = 0.0003


class LatencyProxy:
    """A TCP proxy on 127.0.0.1 that adds a round-trip time (see the module doc)."""

    def __init__(self, target: tuple[str, int], rtt: float, *, spin: float = _SPIN) -> None:
        self.target = target
        self.rtt = rtt
        self.spin = spin
        self.connections = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("LatencyProxy is not started.")
        return int(self._listener.getsockname()[1])

    def start(self) -> LatencyProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, 0))
        listener.listen(256)
        self._listener = listener
        threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            accepted = time.monotonic()
            with self._lock:
                self.connections += 1
            threading.Thread(
                target=self._link, args=(client, accepted), name="proxy-link", daemon=True
            ).start()

    def _link(self, client: socket.socket, accepted: float) -> None:
        try:
            server = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._open.update((client, server))
        # The client could not have sent a byte before its connect() returned,
        # one round trip after it started.
        upstream = threading.Thread(
            target=self._pump, args=(client, server, accepted + self.rtt), daemon=True
        )
        upstream.start()
        self._pump(server, client, 0.0)
        upstream.join()
        with self._lock:
            self._open.difference_update((client, server))
        client.close()
        server.close()

    def _pump(self, source: socket.socket, sink: socket.socket, not_before: float) -> None:
        """Read ``source`` here; a writer thread delivers each chunk ``rtt / 2`` later."""
        half = self.rtt / 2
        chunks: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()
        writer = threading.Thread(target=self._deliver, args=(chunks, sink), daemon=True)
        writer.start()
        # The kernel's arrival time, not this thread's (later) wake-up time.
        source.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        realtime_offset = time.time() - time.monotonic()
        while True:
            try:
                data, ancillary, _flags, _addr = source.recvmsg(_CHUNK, _ANCILLARY)
            except OSError:
                data, ancillary = b"", []
            arrived = time.monotonic()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == _SCM_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    arrived = min(arrived, seconds + nanoseconds / 1e9 - realtime_offset)
            chunks.put((max(arrived, not_before) + half, data))
            if not data:
                break
        writer.join()

    def _deliver(
        self, chunks: queue.SimpleQueue[tuple[float, bytes]], sink: socket.socket
    ) -> None:
        while True:
            when, data = chunks.get()
            _sleep_until(when, self.spin)
            try:
                if not data:  # end of input: pass the half-close on
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
            except OSError:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_RDWR)
                return


def _sleep_until(when: float, spin: float) -> None:
    """Wake at ``when``: ``time.sleep`` oversleeps by 0.1-0.2 ms on a VM, so sleep
    to ``spin`` seconds short of it and spin the rest (accurate to microseconds,
    at the cost of some CPU)."""
    delay = when - time.monotonic() - spin
    if delay > 0:
        time.sleep(delay)
    while time.monotonic() < when:
        pass


class Upstream:
    """``python -m bench.upstream`` in a child process, started and stopped by us.

    ``url`` is the proxy's ``https://`` base URL, ``ca_bundle`` the CA to trust.
    """

    def __init__(self, *, rtt: float, latency: float = 0.0, spin: float = _SPIN) -> None:
        self.rtt = rtt
        self.latency = latency
        self.spin = spin
        self.url = ""
        self.ca_bundle = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Upstream:
        self._proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "bench.upstream",
                "--rtt-ms",
                str(self.rtt * 1000),
                "--latency-ms",
                str(self.latency * 1000),
                "--spin-us",
                str(self.spin * 1e6),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=child_env(),
        )
        try:
            ready = self._read_line(timeout=30)
        except BaseException:
            stop_process(self._proc)
            raise
        self.url, self.ca_bundle = ready["url"], ready["ca_bundle"]
        return self

    def stats(self) -> dict[str, Any]:
        """``requests``, ``by_email``, ``proxy_connections``, ``server_connections``."""
        assert self._proc is not None
        assert self._proc.stdin is not None
        self._proc.stdin.write("stats\n")
        self._proc.stdin.flush()
        return self._read_line(timeout=30)

    def _read_line(self, *, timeout: float) -> dict[str, Any]:
        assert self._proc is not None
        result: dict[str, Any] = {}

        def read() -> None:
            assert self._proc is not None
            assert self._proc.stdout is not None
            line = self._proc.stdout.readline()
            if line:
                result.update(json.loads(line))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not result:
            raise RuntimeError("bench.upstream did not answer")
        return result

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(OSError):
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            stop_process(self._proc)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Betatel over TLS behind a slow link.")
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="simulated round trip")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="server think time")
    parser.add_argument(
        "--spin-us", type=float, default=_SPIN * 1e6, help="spin before each delivery"
    )
    args = parser.parse_args(argv)
    # Threads here mostly sleep or wait on sockets; wake the one whose bytes
    # are due without waiting for the default 5 ms switch interval.
    sys.setswitchinterval(0.0005)

    from betatel_reset.testing import FakeBetatelServer, make_tls_context

    context, ca_bundle = make_tls_context()
    fake = FakeBetatelServer(
        token=TOKEN, ssl_context=context, ca_bundle=ca_bundle, latency=args.latency_ms / 1000
    ).start()
    port = int(fake.url.rsplit(":", 1)[1])
    proxy = LatencyProxy((HOST, port), args.rtt_ms / 1000, spin=args.spin_us / 1e6).start()
    try:
        print(
            json.dumps({"url": f"https://{HOST}:{proxy.port}", "ca_bundle": ca_bundle}),
            flush=True,
        )
        for _line in sys.stdin:
            requests = list(fake.requests)
            by_email = Counter(r.json.get("email") for r in requests if isinstance(r.json, dict))
            print(
                json.dumps(
                    {
                        "requests": len(requests),
                        "by_email": dict(by_email),
                        "proxy_connections": proxy.connections,
                        "server_connections": fake.connections_accepted,
                    }
                ),
                flush=True,
            )
    finally:
        proxy.stop()
        fake.stop()


if __name__ == "__main__":
    main()
