"""An HTTP adapter whose reads, status line to last byte, end by the call's deadline."""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

#: When the answer of the call under way in this context must be in (``time.monotonic()``).
_deadline: ContextVar[float | None] = ContextVar("betatel_reset_deadline", default=None)


@contextlib.contextmanager
def _answer_due_by(deadline: float) -> Iterator[None]:
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


class _ReadsBeforeDeadline(io.RawIOBase):
    """A socket's reads, each waiting at most for the time left before ``deadline``
    (and never longer than the read timeout the socket had), over TLS as well."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        # Like http.client's own reader, it keeps the socket open while in use.
        self._reads = sock.makefile("rb", buffering=0)
        self._deadline = deadline
        self._timeout = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the deadline for Betatel's answer passed")
        self._sock.settimeout(left if self._timeout is None else min(left, self._timeout))
        try:
            return self._reads.readinto(buffer)
        finally:
            self._sock.settimeout(self._timeout)  # as it was, for the next request

    def close(self) -> None:
        self._reads.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """http.client's response, status line to last byte read before the
    deadline of the call under way, if there is one."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        deadline = _deadline.get()
        if deadline is not None:
            self.fp.close()  # the reader http.client made, not used yet
            self.fp = io.BufferedReader(_ReadsBeforeDeadline(sock, deadline))


class _HTTPConnection(HTTPConnection):
    response_class = _DeadlineResponse


class _HTTPSConnection(HTTPSConnection):
    response_class = _DeadlineResponse


class _HTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES: dict[str, type[HTTPConnectionPool]] = {
    "http": _HTTPConnectionPool,
    "https": _HTTPSConnectionPool,
}


class DeadlineAdapter(HTTPAdapter):
    """A ``requests`` adapter whose connections, direct or through an HTTP
    proxy, read an answer only until the deadline of the call under way.

    :meth:`HttpBackend.create_session` mounts one. A site that mounts its own
    adapter there should subclass this one, or ``DEADLINE`` no longer bounds
    an answer that arrives slowly.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):  # SOCKS proxies have their own
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager
