"""``{% betatel_reset_layout as layout %}``: what the pages draw themselves
inside a site's layout (``PAGE_MAIN``, ``PAGE_MESSAGES``)."""

from __future__ import annotations

from django import template

from ..conf import DEFAULTS, app_settings

register = template.Library()


@register.simple_tag
def betatel_reset_layout() -> dict[str, bool]:
    """``{"main": ..., "messages": ...}``; a value the app cannot use falls back
    to its default here (check E007 names it), so a page never fails on it."""
    return {
        "main": _flag("PAGE_MAIN"),
        "messages": _flag("PAGE_MESSAGES"),
    }


def _flag(name: str) -> bool:
    if app_settings.usable(name):
        return bool(getattr(app_settings, name))
    return bool(DEFAULTS[name])
