"""What an address is: how it is checked, normalised, keyed and masked."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from .exceptions import InvalidAddress

T = TypeVar("T")

#: RFC 5321 caps a forward path at 256 octets, so an address at 254.
MAX_EMAIL_LENGTH = 254


def clean_address(value: str) -> str:
    """The address normalised as sites store it, or :class:`InvalidAddress`.

    Surrounding white space is dropped and the domain lower-cased (as Django's
    ``BaseUserManager.normalize_email`` does); control characters, which could
    forge log lines or headers, are refused rather than stripped. The checks
    apply to the normalised address, so the result passes them again unchanged
    (lower-casing can lengthen a domain: ``"İ".lower()`` is two characters).
    """
    if not isinstance(value, str):
        raise InvalidAddress("The address must be a string.")
    local, at, domain = value.strip().rpartition("@")
    address = f"{local}{at}{domain.lower()}"
    if not address or len(address) > MAX_EMAIL_LENGTH:
        raise InvalidAddress()
    if any(unicodedata.category(ch)[0] == "C" for ch in address):
        raise InvalidAddress("The address contains control characters.")
    try:
        validate_email(address)
    except ValidationError:
        raise InvalidAddress() from None
    return address


def mask_email(address: str) -> str:
    """``ada@example.com`` → ``a***@example.com``: enough to tell log lines apart."""
    local, sep, domain = address.rpartition("@")
    if not sep:
        return "***"
    return f"{local[:1]}***@{domain}"


def mailbox_key(address: str) -> str:
    """One key per mailbox, however its letters are cased: one rate-limit
    counter, and one send when a selection names it twice."""
    return address.strip().casefold()


def unique_addresses(
    items: Iterable[T],
    address_of: Callable[[T], str] = str,
    *,
    on_repeat: Callable[[T], object] | None = None,
) -> Iterator[T]:
    """``items`` in order, each mailbox once (the first spelling wins).

    ``address_of`` finds the address in an item (default: the item is one);
    ``on_repeat`` is called with each item left out. Lazy, so a huge input is
    never held in memory; what it remembers is one key per mailbox.
    """
    seen: set[str] = set()
    for item in items:
        key = mailbox_key(address_of(item))
        if key in seen:
            if on_repeat is not None:
                on_repeat(item)
            continue
        seen.add(key)
        yield item
