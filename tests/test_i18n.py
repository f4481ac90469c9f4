"""The French translation: the pages switch language, and the catalog is complete.

The catalog checks parse ``django.po`` with a few lines of Python (no polib),
so a string added to the code without a translation fails here, not in front of
a French user. To bring the catalog up to date, from ``betatel_reset/``::

    PYTHONPATH=.. DJANGO_SETTINGS_MODULE=tests.settings \\
        ../.venv/bin/django-admin makemessages -l fr --no-location
    # translate the new entries, remove "#, fuzzy", then:
    PYTHONPATH=.. DJANGO_SETTINGS_MODULE=tests.settings \\
        ../.venv/bin/django-admin compilemessages -l fr
"""

from __future__ import annotations

import ast
import gettext
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation

import betatel_reset
from betatel_reset import ratelimit
from betatel_reset.backends import locmem

APP_DIR = Path(betatel_reset.__file__).resolve().parent
LC_MESSAGES = APP_DIR / "locale" / "fr" / "LC_MESSAGES"
PO_FILE = LC_MESSAGES / "django.po"
MO_FILE = LC_MESSAGES / "django.mo"

RESEND = reverse("betatel_reset:resend")
EXPIRED = reverse("betatel_reset:expired")

NBSP = "\u00a0"
TITLES = {
    RESEND: {
        "fr": f"Vous n’avez pas reçu l’e-mail{NBSP}?",  # noqa: RUF001  (French apostrophe)
        "en": "Didn&#x27;t get the email?",
    },
    EXPIRED: {"fr": "Ce lien de réinitialisation a expiré", "en": "This reset link has expired"},
}
PAGES = pytest.mark.parametrize("url", [RESEND, EXPIRED], ids=["resend", "expired"])


@pytest.fixture(autouse=True)
def _back_to_the_default_language() -> Iterator[None]:
    """LocaleMiddleware leaves its language active on the thread: drop it."""
    yield
    translation.deactivate()


@pytest.fixture
def french() -> Client:
    """A browser whose user prefers French."""
    return Client(headers={"Accept-Language": "fr"})


def html(response: Any) -> str:
    return response.content.decode()


# The pages ---------------------------------------------------------------------


@PAGES
def test_accept_language_fr_gives_the_french_page(french: Client, url: str) -> None:
    response = french.get(url)

    assert response.status_code == 200
    page = html(response)
    assert '<html lang="fr"' in page
    assert f"<title>{TITLES[url]['fr']}" in page  # the demo site appends its name
    assert f"<h1>{TITLES[url]['fr']}</h1>" in page
    assert '<label for="id_email">Adresse e-mail</label>' in page
    assert "L’adresse que vous utilisez pour vous connecter." in page  # noqa: RUF001
    assert "Envoyer un nouveau lien de réinitialisation</button>" in page
    assert response["Content-Language"] == "fr"


def test_each_page_keeps_its_own_french_explanation(french: Client) -> None:
    resend = html(french.get(RESEND))
    expired = html(french.get(EXPIRED))

    assert "Demandez un nouveau lien de réinitialisation" in resend
    assert "une durée limitée, et une seule fois" in expired
    assert "une durée limitée" not in resend


@PAGES
def test_site_language_fr_is_the_default_without_a_header(
    client: Client, settings: Any, url: str
) -> None:
    settings.LANGUAGE_CODE = "fr"

    page = html(client.get(url))

    assert '<html lang="fr"' in page
    assert f"<h1>{TITLES[url]['fr']}</h1>" in page


@PAGES
def test_english_stays_english(client: Client, url: str) -> None:
    page = html(client.get(url, headers={"Accept-Language": "en"}))

    assert '<html lang="en"' in page
    assert f"<h1>{TITLES[url]['en']}</h1>" in page
    assert '<label for="id_email">Email address</label>' in page


def test_the_browser_preference_wins_over_the_site_language(client: Client, settings: Any) -> None:
    settings.LANGUAGE_CODE = "fr"

    page = html(client.get(RESEND, headers={"Accept-Language": "en"}))

    assert '<html lang="en"' in page
    assert f"<h1>{TITLES[RESEND]['en']}</h1>" in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("email", "error"),
    [
        ("not-an-address", "Saisissez une adresse e-mail valide, par exemple nom@example.com."),
        ("", "Saisissez votre adresse e-mail."),
        ("a" * 243 + "@example.com", "Une adresse e-mail comporte au plus 254 caractères."),
    ],
    ids=["invalid", "missing", "too-long"],
)
@PAGES
def test_field_errors_are_french(
    french: Client, locmem_backend: None, url: str, email: str, error: str
) -> None:
    response = french.post(url, {"email": email})

    assert response.status_code == 400
    page = html(response)
    assert error in page
    assert '<html lang="fr"' in page
    assert locmem.outbox == []


@pytest.mark.django_db
@PAGES
def test_success_message_is_french(french: Client, locmem_backend: None, url: str) -> None:
    response = french.post(url, {"email": "ada@example.com"}, follow=True)

    assert response.redirect_chain == [(url, 302)]
    page = html(response)
    assert '<html lang="fr"' in page
    assert (
        "Si un compte existe pour ada@example.com, un nouveau lien de réinitialisation y "
        f"arrivera d\u2019ici quelques minutes{NBSP}; pensez aussi à vérifier votre dossier de "
        f"courrier indésirable. Ce n\u2019est pas votre adresse{NBSP}? Saisissez la bonne "
        "ci-dessous."
    ) in page
    assert len(locmem.outbox) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("seconds_left", "wait"),
    [
        (1, "1 seconde"),
        (45, "45 secondes"),
        (60, "1 minute"),
        (1800, "30 minutes"),
    ],
)
def test_rate_limit_message_is_french_with_the_right_plural(
    french: Client,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    seconds_left: int,
    wait: str,
) -> None:
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "BACKEND": "locmem",
        "RATE_LIMIT_EMAIL": "1/h",
    }
    hour = 3600
    now = 500_000 * hour + hour - seconds_left  # the hour window ends in seconds_left
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: float(now)))

    first = french.post(RESEND, {"email": "ada@example.com"})
    second = french.post(RESEND, {"email": "ada@example.com"})

    assert first.status_code == 302
    assert second.status_code == 429
    assert second["Retry-After"] == str(seconds_left)
    assert f"Trop de demandes. Veuillez réessayer dans {wait}.</p>" in html(second)
    assert len(locmem.outbox) == 1


def test_ngettext_uses_the_french_plural_rule() -> None:
    """French counts 0 and 1 as singular, unlike English."""
    with translation.override("fr"):
        assert [
            translation.ngettext("%(count)d minute", "%(count)d minutes", n) % {"count": n}
            for n in (0, 1, 2)
        ] == ["0 minute", "1 minute", "2 minutes"]


# The catalog -------------------------------------------------------------------


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)


_KEYWORD_RE = re.compile(r"^(msgid_plural|msgid|msgstr(?:\[(\d+)\])?) (\".*\")$")
_PLACEHOLDER_RE = re.compile(r"%\((\w+)\)[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrs]")


def parse_po(path: Path) -> list[Entry]:
    """The entries of a .po file, header first; obsolete (``#~``) entries skipped."""
    entries: list[Entry] = []
    entry, target = Entry(), None
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            if target is not None:
                entries.append(entry)
            entry, target = Entry(), None
        elif line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif match := _KEYWORD_RE.match(line):
            keyword, index, text = match.groups()
            target = (keyword, int(index or 0))
            _append(entry, target, ast.literal_eval(text))
        else:
            assert target is not None, f"unexpected line in {path.name}: {line!r}"
            _append(entry, target, ast.literal_eval(line))
    return entries


def _append(entry: Entry, target: tuple[str, int], text: str) -> None:
    keyword, index = target
    if keyword == "msgid":
        entry.msgid += text
    elif keyword == "msgid_plural":
        entry.msgid_plural = (entry.msgid_plural or "") + text
    else:
        entry.msgstr[index] = entry.msgstr.get(index, "") + text


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER_RE.findall(text))


@pytest.fixture(scope="module")
def catalog() -> list[Entry]:
    header, *entries = parse_po(PO_FILE)
    assert header.msgid == ""
    return entries


def test_header_declares_french() -> None:
    header = parse_po(PO_FILE)[0]

    assert "fuzzy" not in header.flags
    fields = dict(line.split(": ", 1) for line in header.msgstr[0].splitlines() if ": " in line)
    assert fields["Language"] == "fr"
    assert fields["Plural-Forms"] == "nplurals=2; plural=(n > 1);"
    assert fields["Content-Type"] == "text/plain; charset=UTF-8"


def test_every_entry_is_translated_and_none_is_fuzzy(catalog: list[Entry]) -> None:
    assert len(catalog) > 50
    for entry in catalog:
        assert "fuzzy" not in entry.flags, entry.msgid
        expected_forms = {0, 1} if entry.msgid_plural is not None else {0}
        assert set(entry.msgstr) == expected_forms, entry.msgid
        for text in entry.msgstr.values():
            assert text.strip(), f"untranslated: {entry.msgid!r}"


def test_translations_keep_every_placeholder(catalog: list[Entry]) -> None:
    for entry in catalog:
        if entry.msgid_plural is None:
            assert placeholders(entry.msgstr[0]) == placeholders(entry.msgid), entry.msgid
        else:
            # The singular may leave out the count ("the selected user"), as English does.
            assert placeholders(entry.msgstr[0]) <= placeholders(entry.msgid_plural)
            assert placeholders(entry.msgstr[1]) == placeholders(entry.msgid_plural)


def test_typography_is_consistent(catalog: list[Entry]) -> None:
    """Typographic apostrophes, and a non-breaking space before : ; ? ! as Django's
    own French catalog does."""
    for entry in catalog:
        for text in entry.msgstr.values():
            assert "'" not in text, text
            assert not re.search(r"(?<!\u00a0)[:;?!](?=\s|$)", text), text
            assert not re.search(r"«(?!\u00a0)|(?<!\u00a0)»", text), text


def test_compiled_catalog_matches_the_po(catalog: list[Entry]) -> None:
    with MO_FILE.open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)

    for entry in catalog:
        if entry.msgid_plural is None:
            assert compiled.gettext(entry.msgid) == entry.msgstr[0]
        else:
            assert compiled.ngettext(entry.msgid, entry.msgid_plural, 1) == entry.msgstr[0]
            assert compiled.ngettext(entry.msgid, entry.msgid_plural, 5) == entry.msgstr[1]
    assert compiled.info()["language"] == "fr"
    assert compiled.gettext("Home") == "Accueil"


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs GNU gettext")
def test_catalog_holds_every_string_in_the_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, catalog: list[Entry]
) -> None:
    """Extract the strings afresh (on a copy of the app) and compare: a string
    added without re-running makemessages fails here."""
    copy = tmp_path / "betatel_reset"
    shutil.copytree(APP_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    monkeypatch.chdir(copy)

    call_command("makemessages", locale=["fr"], no_location=True, verbosity=0)

    fresh = parse_po(copy / "locale" / "fr" / "LC_MESSAGES" / "django.po")[1:]
    in_code, shipped = {e.msgid for e in fresh}, {e.msgid for e in catalog}
    assert not in_code - shipped, f"re-run makemessages, translate: {sorted(in_code - shipped)}"
    assert not shipped - in_code, f"re-run makemessages, obsolete: {sorted(shipped - in_code)}"
    assert [e for e in fresh if "fuzzy" in e.flags or not all(e.msgstr.values())] == []
