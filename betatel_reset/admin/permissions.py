"""The one permission every resend action requires."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

#: The permission every action here requires.
PERMISSION = "betatel_reset.send_reset_email"
#: The ``has_<name>_permission`` method Django's action permissions call.
PERMISSION_METHOD = "has_send_reset_email_permission"


def has_send_permission(request: HttpRequest) -> bool:
    return request.user.has_perm(PERMISSION)


def _has_send_reset_email_permission(model_admin: Any, request: HttpRequest) -> bool:
    return has_send_permission(request)
