"""The pages inside a site's own layout: a Bootstrap-like base template with
blocks ``title``, ``content``, ``css`` and ``javascript``, no ``extra_head``,
no ``<main>``, and its own loop over ``messages`` (tests/sites/example_site)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from betatel_reset.backends import locmem

from .support.real_services import ROOT

pytestmark = pytest.mark.django_db

RESEND = reverse("betatel_reset:resend")
EXPIRED = reverse("betatel_reset:expired")
SITE_TEMPLATES = ROOT / "tests" / "sites" / "example_site" / "templates"
SENT = "a new reset link will arrive there within a few minutes"


@pytest.fixture
def site_layout(settings: Any) -> Any:
    """The example site's templates and the README's settings for its base."""
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [SITE_TEMPLATES]}]
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "BACKEND": "locmem",
        "PAGE_MAIN": True,
        "PAGE_MESSAGES": False,
    }
    locmem.outbox.clear()
    return settings


def body(html: str) -> str:
    return html.split("<body", 1)[1]


@pytest.mark.parametrize("url", [RESEND, EXPIRED])
def test_the_page_sits_in_the_sites_layout_with_its_assets(
    client: Client, site_layout: Any, url: str
) -> None:
    html = client.get(url).content.decode()

    assert 'id="example-site-layout"' in html
    # The site's own title pattern is kept; the page's title fills its block.
    assert re.search(r"<title>.+ · Example Members</title>", html)
    # No extra_head block in this base: the assets are linked from the body.
    assert '<link rel="stylesheet" href="/static/betatel_reset/betatel_reset.css">' in body(html)
    assert 'src="/static/betatel_reset/betatel_reset.js" defer' in body(html)
    assert html.count("<main") == 1


def test_a_flashed_message_appears_once_when_the_site_prints_messages(
    client: Client, site_layout: Any
) -> None:
    html = client.post(RESEND, {"email": "ada@example.com"}, follow=True).content.decode()

    assert html.count(SENT) == 1
    assert 'class="betatel-reset__messages"' not in html


def test_the_page_prints_messages_itself_by_default(client: Client, site_layout: Any) -> None:
    site_layout.BETATEL_RESET = {**site_layout.BETATEL_RESET, "PAGE_MESSAGES": True}
    html = client.post(RESEND, {"email": "ada@example.com"}, follow=True).content.decode()

    # The site's loop and the page's live region: why PAGE_MESSAGES exists.
    assert html.count(SENT) == 2
    assert 'class="betatel-reset__messages"' in html


def test_page_main_off_leaves_the_landmark_to_a_base_that_has_one(
    client: Client, settings: Any
) -> None:
    # The demo's base wraps content in <main>; tests/settings.py turns PAGE_MAIN off.
    html = client.get(RESEND).content.decode()
    assert html.count("<main") == 1
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "PAGE_MAIN": True}
    assert client.get(RESEND).content.decode().count("<main") == 2


def test_a_layout_value_the_app_cannot_use_falls_back_to_its_default(
    client: Client, site_layout: Any
) -> None:
    site_layout.BETATEL_RESET = {**site_layout.BETATEL_RESET, "PAGE_MAIN": "no"}
    response = client.get(RESEND)

    assert response.status_code == 200
    assert response.content.decode().count("<main") == 1


def test_a_base_with_other_block_names_and_its_own_main(client: Client, settings: Any) -> None:
    """The README's nesting recipe, with PAGE_MAIN off for a base that has <main>."""
    templates = ROOT / "tests" / "sites" / "renamed_blocks" / "templates"
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [templates]}]
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "PAGE_MAIN": False}

    html = client.get(RESEND).content.decode()

    assert 'id="renamed-layout"' in html
    assert "<title>Didn&#x27;t get the email? | Renamed Blocks</title>" in html
    assert html.count("<main") == 1
    assert "/static/betatel_reset/betatel_reset.css" in body(html)
    assert "<h1>Didn&#x27;t get the email?</h1>" in html
