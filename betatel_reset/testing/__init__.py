"""A fake Betatel API on 127.0.0.1 for tests, able to misbehave on demand.

    with FakeBetatelServer(token="t", unknown_emails={"ghost@example.com"}) as fake:
        settings.BETATEL_RESET = {"API_URL": fake.url, "TOKEN": "t"}
        fake.behave(Behaviour.status(503, retry_after=2))  # the next request only
        ...
        assert fake.requests[0].json == {"email": "ada@example.com"}

Standard library only; ``make_tls_context()`` needs ``trustme``.
"""

from .behaviours import RESEND_PATH, Behaviour, RecordedRequest
from .server import FakeBetatelServer, make_tls_context, unused_port_url

__all__ = [
    "RESEND_PATH",
    "Behaviour",
    "FakeBetatelServer",
    "RecordedRequest",
    "make_tls_context",
    "unused_port_url",
]
