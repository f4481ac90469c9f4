"""Sending a selection in the request or on a background worker."""

from __future__ import annotations

from types import ModuleType

from .conf import app_settings


def _tasks_module() -> ModuleType | None:
    """:mod:`betatel_reset.tasks`, or ``None`` without a Tasks framework."""
    try:
        from . import tasks
    except ImportError:  # Django 5.2 without the django-tasks backport
        return None
    return tasks


def inline_limit_exceeded(count: int) -> bool:
    """Whether ``count`` addresses are too many to send in the request."""
    tasks = _tasks_module()
    inline = tasks is None or tasks.backend_is_immediate()
    return inline and count > app_settings.INLINE_MAX_BATCH
