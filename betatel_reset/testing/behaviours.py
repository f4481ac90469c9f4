"""What the fake Betatel records of a request, and the ways it can answer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

RESEND_PATH = "/api/auth/reset-password/resend"

BehaviourKind = Literal[
    "status", "html", "invalid_json", "slow", "drip", "close", "huge", "redirect"
]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake server received it. Its repr leaves out headers and body."""

    method: str
    path: str
    headers: dict[str, str] = field(repr=False)  # lower-cased names
    body: bytes = field(repr=False)
    json: Any | None  # the parsed body, or None when it is not JSON
    #: When it arrived (``time.time()``), to count requests per second.
    received_at: float = field(default_factory=time.time, repr=False, compare=False)

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
    drip_head: bool = False

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
    def drip(cls, interval: float, *, head: bool = False) -> Behaviour:
        """Answer per the real contract, the body one byte every ``interval`` seconds.

        The status line and headers go at once, unless ``head`` is true: then
        they drip too, so not even the status arrives in time.
        """
        if interval < 0:
            raise ValueError("interval must not be negative.")
        return cls("drip", seconds=interval, drip_head=head)

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
