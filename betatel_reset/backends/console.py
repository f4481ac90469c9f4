from __future__ import annotations

import json
import sys
import threading
from typing import TextIO

from ..conf import app_settings
from ..tokens import mask_token
from . import BaseBackend, UpstreamResponse


class ConsoleBackend(BaseBackend):
    """Prints the request it would send, token masked, and reports success.

    Meant for development: a site works offline with no token configured.
    """

    requires_token = False

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    def send(self, email: str, *, token: str | None) -> UpstreamResponse:
        body = json.dumps({"email": email})
        text = (
            f"POST {app_settings.ENDPOINT_URL}\n"
            f"Authorization: Bearer {mask_token(token)}\n"
            "Content-Type: application/json\n"
            "\n"
            f"{body}\n"
            f"{'-' * 79}\n"
        )
        with self._lock:
            self.stream.write(text)
            self.stream.flush()
        return UpstreamResponse(status_code=None, message="Printed to the console.")
