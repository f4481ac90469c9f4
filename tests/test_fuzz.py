"""Property-based tests (Hypothesis) of the form and the public view.

Whatever a client types or sends: no 500; only an address that passes
validation reaches Betatel, exactly as :func:`~betatel_reset.addresses.clean_address`
would keep it; and the body sent upstream is well-formed JSON with exactly one
key, ``email``. Each family of hostile input is its own test id.
"""

from __future__ import annotations

import contextlib
import json
import unicodedata
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import idna
import pytest
import responses
from django.test import Client
from django.test.client import encode_multipart
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from betatel_reset.addresses import MAX_EMAIL_LENGTH, clean_address, mailbox_key
from betatel_reset.exceptions import InvalidAddress
from betatel_reset.forms import ResendForm

from .conftest import ENDPOINT

pytestmark = pytest.mark.django_db

RESEND = "/reset-password/resend/"
BOUNDARY = "fuzz-boundary-7b0c"
ENCODINGS: dict[str, tuple[str, Callable[[str], bytes]]] = {
    "urlencoded": (
        "application/x-www-form-urlencoded",
        lambda value: urlencode({"email": value}).encode(),
    ),
    "multipart": (
        f"multipart/form-data; boundary={BOUNDARY}",
        lambda value: encode_multipart(BOUNDARY, {"email": value}),
    ),
}

FUZZ = settings(
    max_examples=60,  # per family: about 600 examples a test, a few seconds
    deadline=None,
    database=None,  # leave no .hypothesis/ directory behind
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Strings HTTP can carry: anything but lone surrogates, which UTF-8 cannot encode.
ANY_CHAR = st.characters(exclude_categories=["Cs"])
LETTERS = st.characters(categories=["Lu", "Ll", "Lo"])
IDN_DOMAINS = st.one_of(
    st.sampled_from(
        [
            "bücher.example",
            "xn--bcher-kva.example",
            "例子.广告",
            "ελληνικά.example",
            "İstanbul.example",
            "ÅNGSTRÖM.example",
            "münchen.DE",
            "ǅemo.example",
        ]
    ),
    st.builds(
        "{}.{}".format,
        st.text(LETTERS, min_size=1, max_size=30),
        st.sampled_from(["example", "com", "рф", "中国"]),
    ),
)


@st.composite
def with_inserted(draw: st.DrawFn, chars: st.SearchStrategy[str]) -> str:
    """A valid address with one of ``chars`` slipped in somewhere."""
    value = draw(st.emails())
    at = draw(st.integers(0, len(value)))
    return value[:at] + draw(chars) + value[at:]


FAMILIES: dict[str, st.SearchStrategy[str]] = {
    "valid-addresses": st.emails(),
    "arbitrary-unicode": st.text(ANY_CHAR, max_size=300),
    "control-characters": with_inserted(
        st.one_of(
            st.characters(categories=["Cc", "Cf", "Zl", "Zp"]),
            st.sampled_from(["\t", "\x0b", "\x1b", "\x7f", "\x85", "\u200b", "\u2028", "\ufeff"]),
        )
    ),
    "cr-lf": st.one_of(
        with_inserted(st.sampled_from(["\r", "\n", "\r\n"])),
        st.emails().map(lambda email: f"{email}\r\nBcc: eve@example.com"),
    ),
    "nul-bytes": with_inserted(st.text("\x00", min_size=1, max_size=3)),
    "very-long-strings": st.one_of(
        st.text(ANY_CHAR, min_size=200, max_size=2000),
        st.builds(lambda n, email: "a" * n + email, st.integers(200, 1990), st.emails()),
    ),
    "internationalised-domains": st.builds(
        "{}@{}".format, st.sampled_from(["ada", "用户", "θεός", "Ada.Lovelace"]), IDN_DOMAINS
    ),
    "many-at-signs": st.builds(
        lambda local, count, domain: local + "@" * count + domain,
        st.text(ANY_CHAR, max_size=20),
        st.integers(2, 50),
        st.sampled_from(["example.com", "a@b.c", "", "@"]),
    ),
    "json-looking-text": st.one_of(
        st.sampled_from(
            [
                '{"email": "a@b.c", "x": 1}',
                '{"email": "a@b.c"}',
                '["a@b.c"]',
                'ada@example.com", "admin": true, "x": "',
                '"{\\"email\\": \\"x@y.z\\"}"@example.com',  # valid: a quoted local part
            ]
        ),
        st.dictionaries(st.text(max_size=8), st.emails(), max_size=3).map(json.dumps),
    ),
    "surrounding-white-space": st.builds(
        lambda pad, email: pad + email + pad, st.text(" \t\r\n\x00", max_size=5), st.emails()
    ),
}
PER_FAMILY = pytest.mark.parametrize("family", list(FAMILIES))

#: Inputs that once slipped through, or nearly.
TRICKY = {
    # Lower-casing "İ" adds a character: 254 before normalising, 255 after.
    "idn-lowercase-grows-past-254": "a" * (MAX_EMAIL_LENGTH - 17) + "@İstanbul.example",
    "header-injection": "ada@example.com\r\nBcc: eve@example.com",
    "nul-in-the-domain": "ada@exam\x00ple.com",
    "quoted-json-local-part": '"{\\"x\\": 1}"@example.com',
    "zero-width-space": "ada\u200b@example.com",
}


def assert_clean(address: str) -> None:
    """An address as the app sends it: ``clean_address`` keeps it unchanged."""
    assert clean_address(address) == address
    assert len(address) <= MAX_EMAIL_LENGTH
    assert not any(unicodedata.category(ch)[0] == "C" for ch in address)


def check_form(value: str) -> None:
    form = ResendForm(data={"email": value})
    if form.is_valid():
        assert_clean(form.cleaned_data["email"])
    else:
        assert list(form.errors) == ["email"]


def check_view(value: str, encoding: str) -> None:
    content_type, encode = ENCODINGS[encoding]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as upstream:
        upstream.post(ENDPOINT, json={"message": "Reset password email sent successfully"})

        response = Client().post(RESEND, encode(value), content_type=content_type)
        calls = list(upstream.calls)  # leaving the block forgets them

    assert response.status_code in {302, 400}
    if response.status_code == 400:
        assert calls == []
        return
    assert len(calls) == 1
    sent = calls[0].request
    assert sent.headers["Content-Type"] == "application/json"
    body = sent.body.decode("ascii") if isinstance(sent.body, bytes) else sent.body
    payload = json.loads(body)
    assert isinstance(payload, dict)
    assert list(payload) == ["email"]
    assert_clean(payload["email"])
    form = ResendForm(data={"email": value})
    assert form.is_valid()
    assert payload["email"] == form.cleaned_data["email"]


@pytest.fixture
def no_rate_limits(settings: Any) -> None:
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "BACKEND": "http",
        "RATE_LIMIT_EMAIL": None,
        "RATE_LIMIT_IP": None,
    }


@PER_FAMILY
@FUZZ
@given(data=st.data())
def test_form_accepts_only_addresses_the_service_keeps(family: str, data: st.DataObject) -> None:
    check_form(data.draw(FAMILIES[family], label="email"))


@PER_FAMILY
@FUZZ
@given(data=st.data())
def test_view_sends_betatel_only_clean_addresses_in_one_key_json(
    no_rate_limits: None, family: str, data: st.DataObject
) -> None:
    value = data.draw(FAMILIES[family], label="email")
    check_view(value, data.draw(st.sampled_from(sorted(ENCODINGS)), label="encoding"))


@pytest.mark.parametrize("value", list(TRICKY.values()), ids=list(TRICKY))
def test_tricky_addresses(no_rate_limits: None, value: str) -> None:
    check_form(value)
    for encoding in ENCODINGS:
        check_view(value, encoding)


@PER_FAMILY
@FUZZ
@given(data=st.data())
def test_mailbox_key_never_raises_and_keys_itself(family: str, data: st.DataObject) -> None:
    """For anything typed, and for every address the form accepts, the key is
    a key: keying it again changes nothing."""
    value = data.draw(FAMILIES[family], label="email")
    texts = [value]
    with contextlib.suppress(InvalidAddress):
        texts.append(clean_address(value))
    for text in texts:
        key = mailbox_key(text)
        assert mailbox_key(key) == key


#: ASCII ``!`` … ``~`` → their fullwidth forms (U+FF01 … U+FF5E), as East Asian
#: input methods type them.
FULLWIDTH = {code: code + 0xFEE0 for code in range(0x21, 0x7F)}


@FUZZ
@given(address=st.emails(), upper=st.booleans())
def test_fullwidth_and_cased_spellings_share_a_key(address: str, upper: bool) -> None:
    local, _, domain = address.rpartition("@")
    domain = domain.upper() if upper else domain
    assert mailbox_key(f"{local}@{domain.translate(FULLWIDTH)}") == mailbox_key(address)


@FUZZ
@given(local=st.sampled_from(["ada", "Ada.Lovelace"]), domain=IDN_DOMAINS)
def test_unicode_and_punycode_spellings_share_a_key(local: str, domain: str) -> None:
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        return  # IDNA 2008 refuses it: no punycode spelling to compare with
    assert mailbox_key(f"{local}@{ascii_domain.upper()}") == mailbox_key(f"{local}@{domain}")


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=3000),
        st.text(ANY_CHAR, max_size=500).map(lambda text: text.encode()),
        st.one_of(*FAMILIES.values()).map(lambda value: b"email=" + value.encode()),
    ),
    content_type=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            f"multipart/form-data; boundary={BOUNDARY}",
            "multipart/form-data",
            "application/json",
            "text/plain; charset=latin-1",
            "application/x-www-form-urlencoded; charset=bogus-charset",
        ]
    ),
)
def test_raw_bodies_never_answer_500(no_rate_limits: None, body: bytes, content_type: str) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as upstream:
        upstream.post(ENDPOINT, json={"message": "Reset password email sent successfully"})

        # generic(): the bytes go on the wire as they are (post() would re-encode them).
        response = Client().generic("POST", RESEND, body, content_type=content_type)
        calls = list(upstream.calls)

    assert 300 <= response.status_code < 500
    for call in calls:
        assert_clean(json.loads(call.request.body)["email"])
