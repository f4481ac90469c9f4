"""What an address is: how it is checked, normalised, keyed and masked.

An address has two forms here, for two different jobs:

- **What is sent** to Betatel (and kept in the audit trail) is the address as
  the user typed it or the site stored it, normalised only as Django's
  ``BaseUserManager.normalize_email`` normalises what sites store: white space
  dropped, domain lower-cased (:func:`clean_address`). Betatel looks the
  account up by the address it was registered with, most likely that spelling;
  sending another one (punycode for a domain registered in Unicode, a
  case-folded local part) could make it miss an account that exists, and the
  user, told as always that an email is on its way, would get none.
- **What is compared** is :func:`mailbox_key`: one key per mailbox however it
  is spelled, for the rate limits and for de-duplicating a bulk send. It is
  never sent anywhere. Django's own ``PasswordResetForm`` does the same: it
  matches addresses by their NFKC case-folded form and emails the address as
  stored.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import idna
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
    """One key per mailbox, however it is spelled: one rate-limit counter, and
    one send when a selection names it twice.

    The address in Unicode's compatibility form (NFKC: a fullwidth ``e``,
    U+FF45, is an ``e``) without surrounding white space; its local part
    case-folded, and its domain as IDNA writes it in ASCII, lower-cased, so
    ``Bücher.example``, ``bücher.example`` and ``XN--BCHER-KVA.example`` are one
    key. Never raises, and the key of a key is itself.
    """
    local, at, domain = unicodedata.normalize("NFKC", address).strip().rpartition("@")
    local = unicodedata.normalize("NFKC", local.casefold())
    return f"{local}{at}{_ascii_domain(domain)}"


def _ascii_domain(domain: str) -> str:
    """``Bücher.Example`` → ``xn--bcher-kva.example``, as IDNA 2008 spells it.

    IDNA 2008 with UTS #46 mapping, as browsers and mail software spell
    domains today, rather than Python's own ``"idna"`` codec (IDNA 2003), which
    maps ``ß`` to ``ss``: ``faß.de`` and ``fass.de`` are two domains, and one
    key for both would let one mailbox's requests use up the other's limit and
    drop one of them from a bulk send. A domain IDNA 2008 refuses (an emoji, a
    malformed label) keeps its lower-cased NFKC spelling.
    """
    folded = unicodedata.normalize("NFKC", domain.lower())
    try:
        return idna.encode(folded, uts46=True).decode("ascii")
    except UnicodeError:  # idna.IDNAError is one
        return folded


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
