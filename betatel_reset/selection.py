"""Which of the selected users to send to, and why the others are skipped."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model, QuerySet

from . import texts
from .addresses import clean_address, unique_addresses
from .exceptions import InvalidAddress

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


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
    has_is_active = has_field(model, "is_active")
    fields = ["pk", model.USERNAME_FIELD, email_field]
    if has_is_active:
        fields.append("is_active")
    selection = Selection()

    def candidates() -> Iterator[tuple[str, str]]:
        for row in queryset.order_by("pk").values_list(*fields).iterator(chunk_size=2000):
            user, raw = _name(row[0], row[1]), row[2]
            if has_is_active and not row[3]:
                selection.skipped.append((user, texts.get("skip_inactive")))
            elif not raw:
                selection.skipped.append((user, texts.get("skip_no_address")))
            else:
                try:
                    yield user, clean_address(raw)
                except InvalidAddress:
                    selection.skipped.append((user, texts.get("skip_invalid")))

    def repeated(pair: tuple[str, str]) -> None:
        selection.skipped.append((pair[0], texts.get("skip_duplicate")))

    selection.to_send.extend(unique_addresses(candidates(), itemgetter(1), on_repeat=repeated))
    return selection


def _name(pk: Any, username: Any) -> str:
    """How a selected user is named to admins: the username, or the id when it is empty."""
    return str(username) if username else str(texts.format("unnamed_user", id=pk))


def has_field(model: type[Model], name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True
