"""The one permission every resend action and view requires."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

#: The permission every action here requires.
PERMISSION = "betatel_reset.send_reset_email"
#: The ``has_<name>_permission`` method Django's action permissions call.
PERMISSION_METHOD = "has_send_reset_email_permission"


def has_send_reset_email_permission(model_admin: Any, request: HttpRequest) -> bool:
    """Whether the request's user may resend.

    Django's action machinery calls it as a ``ModelAdmin`` method (the admins
    here set it as one, and :mod:`.attach` binds it to the site's user admin);
    the actions check it again themselves, as ``delete_selected`` does.
    """
    return request.user.has_perm(PERMISSION)


class ReadOnlyAdmin:
    """For a ``ModelAdmin`` whose rows only the app writes (audit trail, bulk sends)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
