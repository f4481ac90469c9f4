"""The wording: every sentence has a key in betatel_reset.texts, and the
MESSAGES setting changes it on the pages, in the form and in the admin alike."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.checks import run_checks
from django.test import Client
from django.urls import reverse
from django.utils.translation import gettext_lazy, ngettext_lazy, override

from betatel_reset import ratelimit, texts
from betatel_reset.views import ResendView

RESEND = reverse("betatel_reset:resend")


def with_messages(settings: Any, **messages: Any) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "MESSAGES": messages}


def e006(settings: Any, **messages: Any) -> list[str]:
    with_messages(settings, **messages)
    return [m.msg for m in run_checks() if m.id == "betatel_reset.E006"]


@pytest.mark.django_db
def test_a_site_rewords_the_pages_flash_title_and_form(
    client: Client, settings: Any, locmem_backend: None
) -> None:
    with_messages(
        settings,
        sent="A new link is on its way.",
        resend_title="Need a new link?",
        required="We need your address.",
    )
    page = client.get(RESEND)
    assert "<h1>Need a new link?</h1>" in page.content.decode()

    sent = client.post(RESEND, {"email": "ada@example.com"})
    assert [str(m) for m in get_messages(sent.wsgi_request)] == ["A new link is on its way."]

    empty = client.post(RESEND, {"email": ""})
    assert "We need your address." in empty.content.decode()


@pytest.mark.django_db
def test_rate_limit_wording_is_assembled_from_keys(
    client: Client, settings: Any, locmem_backend: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both POSTs in one fixed window, ten minutes into the hour: 50 minutes left.
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1_800_000_000.0 + 600)
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "RATE_LIMIT_EMAIL": "1/h",
        "MESSAGES": {
            "rate_limited": "Slow down; back in %(wait)s.",
            "wait_minutes": ngettext_lazy("%(count)d min", "%(count)d mins", "count"),
        },
    }
    client.post(RESEND, {"email": "ada@example.com"})
    limited = client.post(RESEND, {"email": "ada@example.com"})
    assert limited.status_code == 429
    assert "Slow down; back in 50 mins." in limited.content.decode()


def test_defaults_are_translated_and_overrides_may_be_lazy(settings: Any) -> None:
    with override("fr"):
        assert texts.format("none_failed") == "Aucune des tentatives sélectionnées n’a échoué."  # noqa: RUF001
    with_messages(settings, none_failed=gettext_lazy("Nothing failed."))
    assert texts.format("none_failed") == "Nothing failed."
    assert texts.format("limits_cleared", count=2).startswith("Cleared the resend rate limits")


def test_class_level_texts_follow_the_setting_at_render_time(settings: Any) -> None:
    title = ResendView.title
    with_messages(settings, resend_title="Changed later")
    assert str(title) == "Changed later"


def test_check_accepts_overrides_within_the_default_placeholders(settings: Any) -> None:
    assert e006(settings, rate_limited="Wait %(wait)s.", sent="Done.") == []
    assert e006(settings, all_skipped=ngettext_lazy("One.", "All %(count)d.", "count")) == []


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ({"sennt": "Done."}, "has an unknown key 'sennt'"),
        ({"sent": "Sent to %(email)s."}, "placeholders its default does not have: email"),
        ({"rate_limited": "Wait %(wait)"}, "is not a valid text"),
    ],
    ids=["typo", "foreign-placeholder", "broken-format"],
)
def test_check_e006_names_the_bad_override(
    settings: Any, messages: dict[str, str], expected: str
) -> None:
    [error] = e006(settings, **messages)
    assert expected in error


def test_check_e006_refuses_a_messages_value_that_is_not_a_dict(settings: Any) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "MESSAGES": ["sent"]}
    assert [m.id for m in run_checks() if m.id == "betatel_reset.E006"] == ["betatel_reset.E006"]


@pytest.mark.django_db
def test_deprecated_view_arguments_still_work_and_warn(
    client: Client, settings: Any, locmem_backend: None, rf: Any
) -> None:
    view = ResendView.as_view(success_message="Old style.")
    request = rf.post(RESEND, {"email": "ada@example.com"})
    request._dont_enforce_csrf_checks = True
    request.session = client.session
    request._messages = FallbackStorage(request)
    with pytest.warns(DeprecationWarning, match="MESSAGES"):
        view(request)
    assert [str(m) for m in request._messages] == ["Old style."]
