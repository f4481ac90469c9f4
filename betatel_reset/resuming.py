"""Resuming a batch that stopped: a crashed command, a dead worker's chunk,
a pause.

Addresses found in flight whose process stopped are settled from the audit
trail where it knows how the send ended, and otherwise marked in doubt: Betatel
may have emailed them, so they are not sent again unless asked.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django.db.models import Max, QuerySet
from django.utils import timezone

from .batches import ENDED, run_batch
from .choices import AddressState, BatchState, Outcome
from .conf import app_settings
from .models import BatchAddress, ResendAttempt, ResendBatch

logger = logging.getLogger(__name__)


def recover_stale_chunks(batch_id: int, **options: Any) -> int:
    """Finish the chunks of a batch whose worker stopped reporting progress:
    started, not finished, and none of its addresses changed for
    ``BULK_STALE_AFTER`` seconds. Its addresses still in flight become in
    doubt and its pending ones are sent; each is claimed as usual, so none is
    sent twice even if that worker was only slow. Returns how many chunks
    were taken over."""
    cutoff = timezone.now() - datetime.timedelta(seconds=app_settings.BULK_STALE_AFTER)
    rows = BatchAddress.objects.filter(batch_id=batch_id)
    unfinished = rows.filter(state__in=(AddressState.PENDING, AddressState.IN_FLIGHT))
    stalled = (
        rows.exclude(state=AddressState.PENDING)
        .order_by()
        .values("chunk")
        .annotate(last=Max("updated_at"))
        .filter(last__lt=cutoff, chunk__in=unfinished.values("chunk"))
        .values_list("chunk", flat=True)
    )
    taken = 0
    for chunk in list(stalled):
        batch = ResendBatch.objects.get(pk=batch_id)
        if batch.state != BatchState.RUNNING:
            break
        logger.warning(
            "Batch %s: taking over chunk %s, which stopped making progress", batch_id, chunk
        )
        settle_in_flight(rows.filter(chunk=chunk, updated_at__lt=cutoff), batch.source)
        run_batch(batch, chunk=chunk, **options)
        taken += 1
    return taken


#: Audited outcomes that mean Betatel did not send: the address may be sent again.
NOT_SENT = (Outcome.UPSTREAM_RATE_LIMITED, Outcome.CIRCUIT_OPEN, Outcome.MISCONFIGURED)


def settle_in_flight(in_flight: QuerySet[BatchAddress], source: str) -> None:
    """Addresses found in flight whose process stopped: where the audit trail
    knows how the send ended (the process died after writing it, before the
    ledger), take that outcome; Betatel's refusals go back to pending; the
    rest are in doubt."""
    for address in in_flight.filter(state=AddressState.IN_FLIGHT):
        attempt = (
            ResendAttempt.objects.filter(
                email=address.email, source=source, created_at__gte=address.updated_at
            )
            .order_by("-created_at", "-id")
            .first()
        )
        if attempt is None or attempt.outcome == Outcome.UNCERTAIN:
            state, outcome = AddressState.IN_DOUBT, ""
        elif attempt.outcome in NOT_SENT:
            state, outcome = AddressState.PENDING, ""
        else:
            state, outcome = AddressState.DONE, attempt.outcome
        BatchAddress.objects.filter(pk=address.pk, state=AddressState.IN_FLIGHT).update(
            state=state, outcome=outcome
        )


class NotResumable(Exception):
    """The batch cannot be resumed now; the message says why."""


def resumable_batch(batch_id: int | None) -> ResendBatch:
    """The batch ``batch_id``, or the most recent one that has not ended."""
    batches = ResendBatch.objects.all()
    if batch_id is None:
        batch = batches.exclude(state__in=ENDED).order_by("-created_at", "-id").first()
        if batch is None:
            raise NotResumable("No unfinished batch to resume.")
        return batch
    found = batches.filter(pk=batch_id).first()
    if found is None:
        raise NotResumable(f"No batch #{batch_id}.")
    return found


def take_over(batch: ResendBatch, *, resend_in_doubt: bool = False) -> list[str]:
    """Prepare ``batch`` to be resumed by this process; returns the addresses
    in doubt (in flight when their process stopped).

    Refused for a batch that has ended, that another process is still sending
    (progress in the last ``BULK_STALE_AFTER`` seconds), or whose
    ``Retry-After`` has not ended yet. In-doubt addresses stay unsent unless
    ``resend_in_doubt``: Betatel may have sent them an email already.
    """
    if batch.state in ENDED:
        raise NotResumable(f"Batch #{batch.pk} is {batch.get_state_display().lower()}.")
    now = timezone.now()
    if batch.resume_after and batch.resume_after > now:
        raise NotResumable(
            f"Batch #{batch.pk} is paused by Betatel's 429 until "
            f"{batch.resume_after:%Y-%m-%d %H:%M:%S %Z}."
        )
    stale = now - datetime.timedelta(seconds=app_settings.BULK_STALE_AFTER)
    if batch.state == BatchState.RUNNING and batch.heartbeat_at and batch.heartbeat_at > stale:
        raise NotResumable(
            f"Batch #{batch.pk} is still being sent (progress in the last "
            f"{app_settings.BULK_STALE_AFTER:g} s); pause it first, or wait."
        )
    addresses = BatchAddress.objects.filter(batch=batch)
    settle_in_flight(addresses, batch.source)
    in_doubt = list(
        addresses.filter(state=AddressState.IN_DOUBT)
        .order_by("id")
        .values_list("email", flat=True)
    )
    if resend_in_doubt:
        addresses.filter(state=AddressState.IN_DOUBT).update(state=AddressState.PENDING)
    ResendBatch.objects.filter(pk=batch.pk).update(
        state=BatchState.RUNNING, heartbeat_at=now, resume_after=None, detail=""
    )
    batch.refresh_from_db()
    return in_doubt
