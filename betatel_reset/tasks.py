"""Bulk resends as a task of Django's Tasks framework.

``django.tasks`` on Django 6.x, the ``django-tasks`` backport on Django 5.2
(``pip install "django-betatel-reset[tasks]"``). The task runs on the backend
named by ``BETATEL_RESET['TASK_BACKEND']`` (an alias of ``settings.TASKS``):

* an immediate backend (the framework's default) runs it in the request, so
  the admin sends a selection inline, with bounded concurrency, and shows the
  outcome at once;
* any other backend (``django-tasks-db``'s ``DatabaseBackend`` and its
  ``manage.py db_worker``, RQ, Celery-based …) queues it: the admin returns at
  once and a worker sends.

Tasks take addresses and a user id, never model instances. Large selections
are split into tasks of ``TASK_CHUNK_SIZE`` addresses, so a worker that dies
mid-batch takes at most one chunk with it: that chunk stays visibly running
or failed, the others stay queued, and the audit trail shows which addresses
of it were sent.

The backend is the one ``TASK_BACKEND`` names when a task is enqueued, not
when this module was imported: enqueue through :func:`enqueue_in_chunks` (or
``send_reset_emails.using(backend=...)``). Chunks are enqueued at once, one
after another, and the caller learns exactly how many went into the queue:
a queue that refuses chunk k leaves chunks k to n unqueued, and says so,
rather than losing them after the admin was told they were queued.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model

from . import batches, resuming
from .bulk import BulkSummary, TaskFailed
from .choices import AddressState, BatchState, Source
from .conf import app_settings
from .exceptions import ConfigurationError
from .models import BatchAddress, ResendBatch

if TYPE_CHECKING:
    from django.tasks import TaskResult, TaskResultStatus, task, task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.backends.immediate import ImmediateBackend
else:
    try:  # Django 6.x
        from django.tasks import TaskResult, TaskResultStatus, task, task_backends
        from django.tasks.backends.base import BaseTaskBackend
        from django.tasks.backends.immediate import ImmediateBackend
    except ImportError:  # Django 5.2 with the django-tasks backport
        from django_tasks import TaskResult, TaskResultStatus, task, task_backends
        from django_tasks.backends.base import BaseTaskBackend
        from django_tasks.backends.immediate import ImmediateBackend

logger = logging.getLogger(__name__)

__all__ = [
    "Queued",
    "TaskFailed",
    "actor_reference",
    "backend_is_immediate",
    "enqueue_batch",
    "enqueue_in_chunks",
    "get_task_backend",
    "run_now",
    "send_batch_chunk",
    "send_reset_emails",
]


@task()
def send_reset_emails(
    addresses: list[str],
    source: str = Source.TASK,
    actor_id: int | str | None = None,
    concurrency: int | None = None,
    wait_out_rate_limits: bool = True,
) -> dict[str, Any]:
    """Resend to ``addresses``; returns :meth:`BulkSummary.as_dict`.

    ``source`` and ``actor_id`` (a user's primary key) end up in the audit
    trail. ``concurrency`` defaults to ``TASK_CONCURRENCY``. Unless
    ``wait_out_rate_limits`` is false, an address Betatel answers with 429 is
    retried after its ``Retry-After`` (``BULK_RETRIES``, ``BULK_MAX_RETRY_WAIT``).
    """
    summary = batches.send_now(
        addresses,
        source=Source(source),
        actor=_load_actor(actor_id),
        concurrency=concurrency or app_settings.TASK_CONCURRENCY,
        retries=app_settings.BULK_RETRIES if wait_out_rate_limits else 0,
        max_retry_wait=app_settings.BULK_MAX_RETRY_WAIT if wait_out_rate_limits else 0.0,
    )
    return summary.as_dict()


@task()
def send_batch_chunk(batch_id: int, chunk: int) -> dict[str, Any]:
    """Send chunk ``chunk`` of batch ``batch_id`` (:mod:`betatel_reset.batches`),
    then take over any chunk of the batch whose worker stopped reporting
    progress for ``BULK_STALE_AFTER`` seconds. Returns what this task sent,
    by outcome."""
    batch = ResendBatch.objects.filter(pk=batch_id).first()
    if batch is None:  # pruned, or deleted by an admin
        return {"outcomes": {}}
    options: dict[str, Any] = {"concurrency": app_settings.TASK_CONCURRENCY}
    result = batches.run_batch(batch, chunk=chunk, **options)
    if result.paused_until is None:
        resuming.recover_stale_chunks(batch_id, **options)
    return {"outcomes": dict(result.outcomes)}


def actor_reference(user: Any) -> int | str | None:
    """A user's primary key in a form a task argument can carry (JSON)."""
    pk = getattr(user, "pk", None)
    if pk is None or isinstance(pk, int):
        return pk
    return str(pk)


def _load_actor(actor_id: int | str | None) -> Any:
    if actor_id is None:
        return None
    return get_user_model()._default_manager.filter(pk=actor_id).first()


def get_task_backend() -> BaseTaskBackend:
    """The backend ``TASK_BACKEND`` names (the framework's error if none)."""
    return task_backends[app_settings.TASK_BACKEND]


def backend_is_immediate() -> bool:
    """Whether ``TASK_BACKEND`` runs tasks at once, in the calling process."""
    return isinstance(get_task_backend(), ImmediateBackend)


def run_now(addresses: Sequence[str], *, source: Source, actor: Any) -> BulkSummary:
    """Send through the immediate backend, ``INLINE_CONCURRENCY`` at a time.

    The immediate backend records a failure in the task result instead of
    raising it, so the result is checked here: a misconfiguration is raised
    again as :class:`ConfigurationError`, anything else as
    :class:`TaskFailed`. A long ``Retry-After`` is not waited for in a request.
    """
    result = send_reset_emails.using(backend=app_settings.TASK_BACKEND).enqueue(
        list(addresses),
        source=str(source),
        actor_id=actor_reference(actor),
        concurrency=app_settings.INLINE_CONCURRENCY,
        wait_out_rate_limits=False,
    )
    if result.status != TaskResultStatus.SUCCESSFUL:
        raise _failure(result)
    return BulkSummary.from_dict(result.return_value)


def _failure(result: TaskResult[Any, Any]) -> ConfigurationError | TaskFailed:
    if not result.errors:
        return TaskFailed(f"The send task ended as {result.status}.")
    error = result.errors[-1]
    # The traceback's last line is "<dotted.path>: <message>".
    message = error.traceback.strip().rpartition("\n")[2].partition(": ")[2]
    if error.exception_class_path == f"{ConfigurationError.__module__}.ConfigurationError":
        return ConfigurationError(message)
    name = error.exception_class_path.rpartition(".")[2]
    return TaskFailed(f"The send task failed with {name}; see the server log.")


@dataclass(frozen=True)
class Queued:
    """What :func:`enqueue_in_chunks` put in the queue, and what it could not."""

    tasks: int
    addresses: int
    not_queued: int
    batch_id: int | None = None


def enqueue_in_chunks(addresses: Sequence[str], *, source: Source, actor: Any) -> Queued:
    """Record ``addresses`` as a queued batch and queue one task per
    ``TASK_CHUNK_SIZE`` of them on ``TASK_BACKEND``.

    Stops at the first chunk the queue refuses (logged with its error): what
    was queued stays queued, the rest is taken out of the batch (so resuming
    it never sends what the admin was told was not queued), and the result
    counts it as not queued.
    """
    size = app_settings.TASK_CHUNK_SIZE
    batch = batches.create_batch(
        addresses, source=source, actor=actor, chunk_size=size, state=BatchState.QUEUED
    )
    tasks = _enqueue_chunks(batch, range(-(-batch.total // size)))
    done = min(tasks * size, batch.total)
    if done < batch.total:
        BatchAddress.objects.filter(batch=batch, chunk__gte=tasks).delete()
        ResendBatch.objects.filter(pk=batch.pk).update(total=done)
    return Queued(tasks=tasks, addresses=done, not_queued=batch.total - done, batch_id=batch.pk)


def enqueue_batch(batch: ResendBatch) -> int:
    """Queue a task for each chunk of ``batch`` with addresses left to send
    (resuming it); returns how many were queued before any refusal."""
    pending = batch.addresses.filter(state=AddressState.PENDING).order_by("chunk")
    return _enqueue_chunks(batch, list(pending.values_list("chunk", flat=True).distinct()))


def _enqueue_chunks(batch: ResendBatch, chunks: Iterable[int]) -> int:
    """Queue ``send_batch_chunk`` for each of ``chunks``, stopping at the
    first the queue refuses (logged); returns how many were queued."""
    queued_task = send_batch_chunk.using(backend=app_settings.TASK_BACKEND)
    tasks = 0
    for chunk in chunks:
        try:
            queued_task.enqueue(batch.pk, chunk)
        except Exception:
            logger.exception(
                "The task queue refused chunk %d of batch %s; %d of %d addresses were queued",
                chunk,
                batch.pk,
                min(tasks * app_settings.TASK_CHUNK_SIZE, batch.total),
                batch.total,
            )
            break
        tasks += 1
    return tasks
