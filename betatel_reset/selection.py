"""Which of the selected users to send to, and why the others are skipped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model, QuerySet
from django.utils.translation import gettext_lazy as _

from .addresses import clean_address, mailbox_key
from .exceptions import InvalidAddress

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

NO_ADDRESS = _("no email address")
INACTIVE = _("inactive")
INVALID = _("not a valid email address")
DUPLICATE = _("same address as another selected user")
SENT_SINCE = _("sent successfully since")


@dataclass
class Selection:
    """Selected users split into the addresses to send to and the users skipped."""

    #: ``(user, address)`` for each user to send to.
    to_send: list[tuple[str, str]] = field(default_factory=list)
    #: ``(user, reason)`` for each user skipped.
    skipped: list[tuple[str, StrOrPromise]] = field(default_factory=list)

    @property
    def addresses(self) -> list[str]:
        return [address for _user, address in self.to_send]


def plan_users(queryset: QuerySet[Any]) -> Selection:
    """Read the selected users' addresses, skipping inactive users, users
    without a (valid) address and repeated addresses; one query, whatever the
    user model (its address comes from ``get_email_field_name()``)."""
    model = queryset.model
    email_field = model.get_email_field_name()
    has_is_active = _has_field(model, "is_active")
    fields = ["pk", model.USERNAME_FIELD, email_field]
    if has_is_active:
        fields.append("is_active")
    selection = Selection()
    seen: set[str] = set()
    for row in queryset.order_by("pk").values_list(*fields).iterator(chunk_size=2000):
        user, raw = str(row[1]), row[2]
        if has_is_active and not row[3]:
            selection.skipped.append((user, INACTIVE))
            continue
        if not raw:
            selection.skipped.append((user, NO_ADDRESS))
            continue
        try:
            address = clean_address(raw)
        except InvalidAddress:
            selection.skipped.append((user, INVALID))
            continue
        key = mailbox_key(address)
        if key in seen:
            selection.skipped.append((user, DUPLICATE))
            continue
        seen.add(key)
        selection.to_send.append((user, address))
    return selection


def _has_field(model: type[Model], name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True
