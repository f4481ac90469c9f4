"""Sending many addresses in the request or on a background worker.

The admin's actions call :func:`dispatch`; it queues the addresses when
``TASK_BACKEND`` is a real queue, and sends them here (a bounded number at a
time) when it runs tasks at once or there is no Tasks framework at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .batches import send_now
from .bulk import BulkSummary
from .choices import Source
from .conf import app_settings


@dataclass(frozen=True)
class Dispatched:
    """What became of the addresses: sent here (``summary``), or ``count`` of
    them queued as ``tasks`` and ``not_queued`` left out by a refusing queue."""

    count: int
    tasks: int = 0
    not_queued: int = 0
    summary: BulkSummary | None = None


def _tasks_module() -> ModuleType | None:
    """:mod:`betatel_reset.tasks`, or ``None`` without a Tasks framework."""
    try:
        from . import tasks
    except ImportError:  # Django 5.2 without the django-tasks backport
        return None
    return tasks


def sends_inline() -> bool:
    """Whether :func:`dispatch` sends in the calling process."""
    tasks = _tasks_module()
    return tasks is None or tasks.backend_is_immediate()


def inline_limit_exceeded(count: int) -> bool:
    """Whether ``count`` addresses are too many to send in the request."""
    return sends_inline() and count > app_settings.INLINE_MAX_BATCH


def dispatch(addresses: Sequence[str], *, source: Source, actor: Any) -> Dispatched:
    """Queue ``addresses`` for background workers, or send them now.

    Raises :class:`~betatel_reset.exceptions.ConfigurationError` when the site
    is misconfigured and :class:`~betatel_reset.bulk.TaskFailed` when a task
    run here failed otherwise.
    """
    tasks = _tasks_module()
    if tasks is None:
        summary = send_now(
            addresses,
            source=source,
            actor=actor,
            concurrency=app_settings.INLINE_CONCURRENCY,
            retries=0,
            max_retry_wait=0.0,
        )
        return Dispatched(count=len(addresses), summary=summary)
    if tasks.backend_is_immediate():
        summary = tasks.run_now(addresses, source=source, actor=actor)
        return Dispatched(count=len(addresses), summary=summary)
    queued = tasks.enqueue_in_chunks(addresses, source=source, actor=actor)
    return Dispatched(count=queued.addresses, tasks=queued.tasks, not_queued=queued.not_queued)
