"""What an address is keyed as: one key per mailbox, however it is spelled."""

from __future__ import annotations

import pytest

from betatel_reset.addresses import mailbox_key, unique_addresses


def fullwidth(text: str) -> str:
    """``ab`` → U+FF41 U+FF42: letters as East Asian input methods type them."""
    return text.translate({code: code + 0xFEE0 for code in range(0x21, 0x7F)})


#: Spellings of one mailbox, each accepted by the pages.
SPELLINGS = {
    "case": ["ada@example.com", "ADA@EXAMPLE.COM", " Ada@Example.com "],
    "fullwidth": [
        "ada@example.com",
        f"ada@{fullwidth('e')}xample.com",
        f"ADA@EXAMPLE.{fullwidth('COM')}",
    ],
    "idn": [
        "ada@bücher.example",
        "Ada@BÜCHER.example",
        "ada@xn--bcher-kva.example",
        "ada@XN--BCHER-KVA.EXAMPLE",
        f"ada@{fullwidth('b')}ücher.example",
        "ada@bu\u0308cher.example",  # ü as u + combining diaeresis
    ],
    "cjk": ["ada@例子.广告", "ada@例子。广告", "ada@xn--fsqu00a.xn--4rr70v"],
}


@pytest.mark.parametrize("spellings", list(SPELLINGS.values()), ids=list(SPELLINGS))
def test_every_spelling_of_a_mailbox_has_one_key(spellings: list[str]) -> None:
    keys = {mailbox_key(spelling) for spelling in spellings}

    assert len(keys) == 1
    assert keys.pop().isascii()


def test_different_mailboxes_keep_different_keys() -> None:
    # IDNA 2008 keeps ß a letter of its own (IDNA 2003 made it "ss"):
    # faß.de and fass.de are two domains with two owners.
    assert mailbox_key("ada@faß.de") == "ada@xn--fa-hia.de"
    assert mailbox_key("ada@fass.de") == "ada@fass.de"
    assert mailbox_key("ada@bücher.example") != mailbox_key("ada@bucher.example")


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("Ada@☃.NET", "ada@☃.net"),  # IDNA 2008 refuses symbols
        (f"ada@{fullwidth('EXAMPLE')}..com", "ada@example..com"),  # an empty label
        ("not an address", "not an address"),
        ("", ""),
    ],
)
def test_what_idna_refuses_keeps_its_lower_cased_nfkc_spelling(address: str, key: str) -> None:
    assert mailbox_key(address) == key


def test_unique_addresses_sends_to_each_mailbox_once() -> None:
    idn, punycode, wide_b = SPELLINGS["idn"][0], SPELLINGS["idn"][2], SPELLINGS["idn"][4]
    ascii_, wide = SPELLINGS["fullwidth"][:2]
    repeated: list[str] = []

    kept = list(
        unique_addresses(
            [idn, punycode, "bob@bücher.example", wide_b, ascii_, wide],
            on_repeat=repeated.append,
        )
    )

    assert kept == [idn, "bob@bücher.example", ascii_]
    assert repeated == [punycode, wide_b, wide]
