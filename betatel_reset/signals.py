"""Signals a site can connect to.

Each is sent with ``sender`` set to the :class:`~betatel_reset.choices.Source`
member of the attempt (``Source.WEB``, ``Source.ADMIN`` …), so a receiver can
listen to one source only: ``resend_sent.connect(handler, sender=Source.ADMIN)``.
No signal carries the API token. Signals are sent with ``send_robust``: a
receiver that raises changes nothing (a sent email is still reported as sent)
and Django logs what it raised on the ``django.dispatch`` logger.

``resend_requested(sender, email, source, actor)``
    before anything else happens (rate limits included).
``resend_sent(sender, email, source, actor, result)``
    Betatel accepted the resend; ``result`` is the ``ResendResult``.
``resend_failed(sender, email, source, actor, outcome, error)``
    it did not happen; ``outcome`` is an ``Outcome``, ``error`` the exception.
"""

from django.dispatch import Signal

resend_requested = Signal()
resend_sent = Signal()
resend_failed = Signal()
