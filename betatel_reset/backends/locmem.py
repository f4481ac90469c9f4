"""An in-memory backend for tests, like ``django.core.mail.outbox``.

Every resend is appended to :data:`outbox`; clear it between tests (the
project's test suite does so in an autouse fixture)::

    from betatel_reset.backends import locmem

    assert [r.email for r in locmem.outbox] == ["ada@example.com"]
"""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass, field

from . import BaseBackend, UpstreamResponse


@dataclass(frozen=True)
class RecordedResend:
    email: str
    token: str | None = field(repr=False)
    at: datetime.datetime


outbox: list[RecordedResend] = []
_lock = threading.Lock()


class LocmemBackend(BaseBackend):
    requires_token = False

    def send(self, email: str, *, token: str | None) -> UpstreamResponse:
        with _lock:
            outbox.append(
                RecordedResend(email=email, token=token, at=datetime.datetime.now(datetime.UTC))
            )
        return UpstreamResponse(status_code=None, message="Recorded in memory.")
