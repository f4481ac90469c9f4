"""A start line for worker processes: a socket on 127.0.0.1 in the test process.

Each worker, once it is ready (Django set up, connections open), calls
:func:`wait_at` with the barrier's address: it connects, says ``ready`` and
blocks. When every worker has said so, :meth:`ProcessBarrier.release` answers
``go`` to all of them at once, so their work starts together rather than in the
order they happened to finish starting up.
"""

from __future__ import annotations

import socket
import subprocess
import time

READY = b"ready\n"
GO = b"go\n"


class ProcessBarrier:
    """The test's side: ``with ProcessBarrier() as barrier:``, hand
    ``barrier.address`` to the workers, start them, ``barrier.release(procs)``."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        host, port = self._server.getsockname()[:2]
        self.address = f"{host}:{port}"

    def __enter__(self) -> ProcessBarrier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.close()

    def release(self, procs: list[subprocess.Popen[str]], timeout: float = 90) -> None:
        """Wait until each of ``procs`` is ready, then let them all go."""
        deadline = time.monotonic() + timeout
        waiting: list[socket.socket] = []
        self._server.settimeout(0.5)
        try:
            while len(waiting) < len(procs):
                dead = [proc.args for proc in procs if proc.poll() is not None]
                assert not dead, f"a worker exited before the start: {dead}"
                assert time.monotonic() < deadline, (
                    f"only {len(waiting)} of {len(procs)} workers got ready in {timeout} s"
                )
                try:
                    conn, _ = self._server.accept()
                except TimeoutError:
                    continue
                conn.settimeout(timeout)
                assert conn.makefile("rb").readline() == READY
                waiting.append(conn)
            for conn in waiting:
                conn.sendall(GO)
        finally:
            for conn in waiting:
                conn.close()


def wait_at(address: str, timeout: float = 120) -> None:
    """The worker's side: say ready, return when the test says go."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(READY)
        answer = conn.makefile("rb").readline()
    if answer != GO:
        raise RuntimeError(f"the barrier closed without releasing this worker: {answer!r}")
