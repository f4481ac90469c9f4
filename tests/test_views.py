"""The public pages, through Django's test client: one test per policy."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
import requests
import responses
from django.contrib.messages import get_messages
from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from betatel_reset.addresses import clean_address
from betatel_reset.backends import locmem
from betatel_reset.choices import Outcome
from betatel_reset.models import ResendAttempt
from betatel_reset.views import PREFILL_COOKIE

from .conftest import ENDPOINT, expect_resends

pytestmark = pytest.mark.django_db

RESEND = reverse("betatel_reset:resend")
EXPIRED = reverse("betatel_reset:expired")
PAGES = pytest.mark.parametrize("url", [RESEND, EXPIRED], ids=["resend", "expired"])

SUCCESS = "a new reset link will arrive there within a few minutes"
UNAVAILABLE = "We couldn&#x27;t send the email right now. Please try again in a few minutes."
UPSTREAM_TEXT = "Internal kaboom at node-7"


def text(response: HttpResponse) -> str:
    return response.content.decode()


def without_csrf(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def flashed(response: HttpResponse) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def assert_no_store(response: HttpResponse) -> None:
    assert "no-store" in response["Cache-Control"]


@PAGES
def test_pages_render_the_form(client: Client, url: str) -> None:
    response = client.get(url)

    assert response.status_code == 200
    assert_no_store(response)
    html = text(response)
    assert html.count("<main") == 1
    assert '<label for="id_email">Email address</label>' in html
    assert 'autocomplete="email"' in html
    assert 'aria-describedby="id_email_helptext"' in html
    assert 'maxlength="254"' in html
    assert 'role="status" aria-live="polite"' in html
    assert "csrfmiddlewaretoken" in html
    assert "/static/betatel_reset/betatel_reset.css" in html


def test_expired_page_has_its_own_title_and_explanation(client: Client) -> None:
    html = text(client.get(EXPIRED))

    assert "<h1>This reset link has expired</h1>" in html
    assert "only work for a limited time" in html
    assert "Didn&#x27;t get the email?</h1>" in text(client.get(RESEND))


@PAGES
def test_success_redirects_back_with_a_message(
    client: Client, locmem_backend: None, url: str
) -> None:
    response = client.post(url, {"email": "  Ada@Example.COM "})

    assert response.status_code == 302
    assert response["Location"] == url
    assert_no_store(response)
    assert [r.email for r in locmem.outbox] == ["Ada@example.com"]
    page = client.get(url)
    assert page.status_code == 200
    assert SUCCESS in text(page)
    # The address as typed (normalised) is in the message, so a typo shows ...
    assert "If an account exists for Ada@example.com, a new reset link" in text(page)
    assert 'value="Ada@example.com"' not in text(page)  # ... and the form starts empty


def test_a_raising_resend_sent_receiver_does_not_turn_a_send_into_a_500(
    client: Client, locmem_backend: None
) -> None:
    from betatel_reset.signals import resend_sent

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("a site's receiver is broken")

    resend_sent.connect(broken, dispatch_uid="test-broken")
    try:
        response = client.post(RESEND, {"email": "ada@example.com"})
    finally:
        resend_sent.disconnect(dispatch_uid="test-broken")
    assert response.status_code == 302
    assert [r.email for r in locmem.outbox] == ["ada@example.com"]
    assert SUCCESS in text(client.get(RESEND))


def test_upstream_is_called_and_its_text_never_shown(
    client: Client, mocked: responses.RequestsMock
) -> None:
    mocked.post(ENDPOINT, json={"message": "Reset password email sent successfully"})

    response = client.post(RESEND, {"email": "ada@example.com"}, follow=True)

    assert len(mocked.calls) == 1
    assert json.loads(mocked.calls[0].request.body) == {"email": "ada@example.com"}
    assert response.redirect_chain == [(RESEND, 302)]
    assert SUCCESS in text(response)
    assert "sent successfully" not in text(response)


def test_unknown_account_looks_exactly_like_a_send(
    client: Client, mocked: responses.RequestsMock
) -> None:
    expect_resends(mocked, sent="known@example.com", unknown="nobody@example.com")

    known = client.post(RESEND, {"email": "known@example.com"})
    known_page = client.get(RESEND)
    unknown = client.post(RESEND, {"email": "nobody@example.com"})
    unknown_page = client.get(RESEND)

    assert [c.response.status_code for c in mocked.calls] == [200, 404]
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert known_page.status_code == unknown_page.status_code == 200
    # The same page but for the address the user typed, which is theirs to see.
    assert without_csrf(text(known_page)).replace("known@", "nobody@") == without_csrf(
        text(unknown_page)
    )
    assert SUCCESS in text(unknown_page)
    assert "not found" not in text(unknown_page)


def test_unknown_account_is_reported_when_enumeration_is_allowed(
    client: Client, mocked: responses.RequestsMock, settings: Any
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "PREVENT_ENUMERATION": False}
    mocked.post(ENDPOINT, status=404, json={"message": "User not found"})

    response = client.post(RESEND, {"email": "nobody@example.com"})

    assert response.status_code == 400
    html = text(response)
    assert "We couldn&#x27;t find an account with that address." in html
    assert 'aria-invalid="true"' in html
    assert 'value="nobody@example.com"' in html
    assert "User not found" not in html
    assert flashed(response) == []


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 500, "json": {"message": UPSTREAM_TEXT}},
        {"status": 502, "body": f"<h1>{UPSTREAM_TEXT}</h1>"},
        {"body": requests.ReadTimeout(UPSTREAM_TEXT)},
        {"status": 401, "json": {"message": UPSTREAM_TEXT}},
        {"status": 429, "json": {"message": UPSTREAM_TEXT}, "headers": {"Retry-After": "600"}},
        {"status": 200, "body": UPSTREAM_TEXT},  # not the JSON Betatel promises
    ],
    ids=["500", "502", "read-timeout", "401-token-rejected", "upstream-429", "not-json"],
)
@PAGES
def test_upstream_failures_keep_the_address_and_answer_503(
    client: Client, mocked: responses.RequestsMock, answer: dict[str, Any], url: str
) -> None:
    mocked.post(ENDPOINT, **answer)

    response = client.post(url, {"email": "ada@example.com"})

    assert response.status_code == 503
    assert_no_store(response)
    html = text(response)
    assert UNAVAILABLE in html
    assert 'value="ada@example.com"' in html
    assert 'role="alert"' in html
    assert "kaboom" not in html
    assert "Traceback" not in html
    assert flashed(response) == []


def test_missing_token_answers_503(
    client: Client, mocked: responses.RequestsMock, settings: Any
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "TOKEN": None}

    response = client.post(RESEND, {"email": "ada@example.com"})

    assert response.status_code == 503
    assert UNAVAILABLE in text(response)
    assert "TOKEN" not in text(response)
    assert len(mocked.calls) == 0


def test_open_circuit_answers_503_without_calling_betatel(
    client: Client, mocked: responses.RequestsMock, settings: Any
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "CIRCUIT_FAILURE_THRESHOLD": 1}
    mocked.post(ENDPOINT, status=500, json={"message": UPSTREAM_TEXT})

    first = client.post(RESEND, {"email": "ada@example.com"})
    second = client.post(RESEND, {"email": "ada@example.com"})

    assert (first.status_code, second.status_code) == (503, 503)
    assert UNAVAILABLE in text(second)
    assert len(mocked.calls) == 1


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "Enter your email address."),
        ({"email": ""}, "Enter your email address."),
        ({"email": "   "}, "Enter your email address."),
        ({"email": "not-an-email"}, "Enter a valid email address"),
        ({"email": "ada@example.com\r\nBcc: eve@example.com"}, "Enter a valid email address"),
        ({"email": "ada\n@example.com"}, "Enter a valid email address"),
        ({"email": "ada@exam\x00ple.com"}, "Enter a valid email address"),
        ({"email": "ada\u200b@example.com"}, "Enter a valid email address"),
        ({"email": "a" * 243 + "@example.com"}, "at most 254 characters"),
    ],
    ids=["missing", "empty", "blank", "no-at", "crlf", "lf", "nul", "zero-width", "255-chars"],
)
@PAGES
def test_invalid_input_answers_400_and_sends_nothing(
    client: Client,
    locmem_backend: None,
    mocked: responses.RequestsMock,
    data: dict[str, str],
    error: str,
    url: str,
) -> None:
    response = client.post(url, data)

    assert response.status_code == 400
    assert_no_store(response)
    html = text(response)
    assert error in html
    assert 'id="id_email_error"' in html
    assert 'aria-describedby="id_email_helptext id_email_error"' in html
    assert 'aria-invalid="true"' in html
    assert locmem.outbox == []
    assert len(mocked.calls) == 0
    assert not ResendAttempt.objects.exists()


@pytest.mark.parametrize("scope", ["RATE_LIMIT_EMAIL", "RATE_LIMIT_IP"])
def test_rate_limit_answers_429_with_retry_after(
    client: Client, locmem_backend: None, settings: Any, scope: str
) -> None:
    rate = {"RATE_LIMIT_EMAIL": "1/h", "RATE_LIMIT_IP": "1/30s"}[scope]
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "RATE_LIMIT_EMAIL": None,
        "RATE_LIMIT_IP": None,
        scope: rate,
    }

    first = client.post(RESEND, {"email": "ada@example.com"})
    second = client.post(RESEND, {"email": "ada@example.com"})

    assert first.status_code == 302
    assert second.status_code == 429
    assert_no_store(second)
    seconds = int(second["Retry-After"])
    assert 1 <= seconds <= (3600 if scope == "RATE_LIMIT_EMAIL" else 30)
    if seconds < 60:
        wait = f"{seconds} second" + ("s" if seconds != 1 else "")
    else:
        minutes = math.ceil(seconds / 60)
        wait = f"{minutes} minute" + ("s" if minutes != 1 else "")
    html = text(second)
    assert f"Too many requests. Please try again in {wait}." in html
    assert 'value="ada@example.com"' in html
    assert len(locmem.outbox) == 1


@pytest.mark.parametrize(
    "spellings",
    [
        # \uff45 and \uff25 are a fullwidth e and E.
        ["ada@example.com", "ada@\uff45xample.com", "ADA@\uff25XAMPLE.COM", "Ada@Example.com"],
        [
            "ada@bücher.example",
            "ada@XN--BCHER-KVA.example",
            "Ada@BÜCHER.EXAMPLE",
            "ada@\uff42ücher.example",
        ],
    ],
    ids=["fullwidth", "idn"],
)
def test_the_address_limit_holds_however_the_address_is_spelled(
    client: Client, locmem_backend: None, settings: Any, spellings: list[str]
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "RATE_LIMIT_EMAIL": "3/15m"}

    statuses = [client.post(RESEND, {"email": email}).status_code for email in spellings]

    assert statuses == [302, 302, 302, 429]
    # Betatel gets each address as typed (domain lower-cased), never the key.
    assert [r.email for r in locmem.outbox] == [clean_address(e) for e in spellings[:3]]


def test_expired_link_moves_the_address_into_a_signed_cookie(client: Client) -> None:
    response = client.get(EXPIRED, {"email": "Ada@Example.COM"})

    assert response.status_code == 302
    assert response["Location"] == EXPIRED
    assert response["Referrer-Policy"] == "no-referrer"
    assert_no_store(response)
    cookie = response.cookies[PREFILL_COOKIE]
    assert "Ada@example.com" not in cookie.value.split(":")[-1]  # signed, not just echoed
    assert cookie["path"] == EXPIRED.rstrip("/")
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["secure"] == ""  # plain HTTP here; see the HTTPS test
    assert 0 < int(cookie["max-age"]) <= 300

    page = client.get(EXPIRED)
    assert page.status_code == 200
    assert 'value="Ada@example.com"' in text(page)
    assert page.cookies[PREFILL_COOKIE].value == ""  # deleted once read
    assert 'value="Ada@example.com"' not in text(client.get(EXPIRED))  # used once


def test_expired_link_cookie_is_secure_over_https(client: Client) -> None:
    response = client.get(EXPIRED, {"email": "ada@example.com"}, secure=True)
    assert response.cookies[PREFILL_COOKIE]["secure"] is True


def test_expired_link_ignores_a_forged_or_stale_cookie(client: Client) -> None:
    client.cookies[PREFILL_COOKIE] = "victim@example.com"  # not signed by the site
    assert "victim@example.com" not in text(client.get(EXPIRED))


def test_expired_link_does_not_touch_the_database(client: Client, django_db_blocker: Any) -> None:
    """These GETs are the links users arrive by: no session row per visit (a
    free way to fill a site's table), and no 500 while the database is down.
    Any query while blocked raises and fails the test."""
    with django_db_blocker.block():
        response = client.get(EXPIRED, {"email": "ada@example.com"})
        page = client.get(EXPIRED)
    assert (response.status_code, page.status_code) == (302, 200)
    assert 'value="ada@example.com"' in text(page)


@pytest.mark.parametrize(
    "value",
    ["not-an-email", '"><script>alert(1)</script>@example.com', "ada@example.com\r\nX: y", ""],
    ids=["no-at", "markup", "crlf", "empty"],
)
def test_expired_link_with_an_invalid_address_drops_it(client: Client, value: str) -> None:
    response = client.get(EXPIRED, {"email": value})

    assert response.status_code == 302
    assert response["Location"] == EXPIRED
    assert response["Referrer-Policy"] == "no-referrer"
    assert PREFILL_COOKIE not in response.cookies or response.cookies[PREFILL_COOKIE].value == ""
    page = text(client.get(EXPIRED))
    assert "<script>alert" not in page
    assert "not-an-email" not in page
    assert "errorlist" not in page


def test_expired_link_keeps_other_parameters(client: Client) -> None:
    response = client.get(EXPIRED, {"email": "ada@example.com", "utm_source": "email"})

    assert response["Location"] == f"{EXPIRED}?utm_source=email"


def test_expired_link_without_the_slash_moves_the_address_out_too(
    client: Client, settings: Any
) -> None:
    # As in the demo: APPEND_SLASH (Django's default) with CommonMiddleware,
    # whose redirect to the slash would copy the address into Location.
    settings.APPEND_SLASH = True
    assert "django.middleware.common.CommonMiddleware" in settings.MIDDLEWARE
    slashless = EXPIRED.rstrip("/")

    response = client.get(slashless, {"email": "Ada@Example.COM", "utm_source": "email"})

    assert response.status_code == 302
    assert response["Location"] in {f"{slashless}?utm_source=email", f"{EXPIRED}?utm_source=email"}
    assert response["Referrer-Policy"] == "no-referrer"
    assert_no_store(response)
    # The test client ignores cookie paths; a browser sends this one to both spellings.
    assert response.cookies[PREFILL_COOKIE]["path"] == slashless
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert 'value="Ada@example.com"' in text(page)


def test_csrf_is_enforced(locmem_backend: None) -> None:
    client = Client(enforce_csrf_checks=True)

    refused = client.post(RESEND, {"email": "ada@example.com"})
    assert refused.status_code == 403
    assert locmem.outbox == []

    client.get(RESEND)
    token = client.cookies["csrftoken"].value
    accepted = client.post(RESEND, {"email": "ada@example.com", "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302
    assert len(locmem.outbox) == 1


def test_pages_are_public_under_login_required_middleware(
    client: Client, locmem_backend: None, settings: Any
) -> None:
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]
    assert client.get("/admin/").status_code == 302  # the middleware is active

    assert client.get(RESEND).status_code == 200
    assert client.get(EXPIRED).status_code == 200
    assert client.get(EXPIRED, {"email": "ada@example.com"})["Location"] == EXPIRED
    posted = client.post(EXPIRED, {"email": "ada@example.com"})
    assert (posted.status_code, posted["Location"]) == (302, EXPIRED)
    assert len(locmem.outbox) == 1


def test_app_base_template_is_a_complete_page_on_its_own(client: Client, settings: Any) -> None:
    # Without the demo's templates directory, the app's own base.html is used,
    # and the page draws its own <main> (PAGE_MAIN's default).
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": []}]
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "PAGE_MAIN": True}

    html = text(client.get(RESEND))

    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="en" dir="ltr">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "<title>Didn&#x27;t get the email?</title>" in html
    assert html.count("<main") == 1
    assert "/static/betatel_reset/betatel_reset.js" in html
    assert "Betatel reset demo" not in html


def test_static_files_are_shipped() -> None:
    assert finders.find("betatel_reset/betatel_reset.css")
    assert finders.find("betatel_reset/betatel_reset.js")


def test_demo_home_links_to_the_pages_and_the_admin(client: Client) -> None:
    html = text(client.get("/"))

    assert f'href="{RESEND}"' in html
    assert f'href="{EXPIRED}"' in html
    assert 'href="/admin/"' in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONNECT_TIMEOUT", "3s"),
        ("CA_BUNDLE", "/nonexistent/ca.pem"),
        ("CACHE_ALIAS", "redis"),
        ("RATE_LIMIT_IP", 20),
        ("CLIENT_IP_HEADER", "X-Forwarded-For"),
        ("PREVENT_ENUMERATION", "no"),  # the same 503 for every address: nothing leaks
        ("AUDIT_ASYNC_COMMIT", "yes"),  # and the attempt is still audited
    ],
)
def test_a_setting_the_app_cannot_use_answers_503_not_500(
    client: Client, settings: Any, mocked: responses.RequestsMock, name: str, value: Any
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, name: value}
    expect_resends(mocked, unknown="ada@example.com")

    response = client.post(RESEND, {"email": "ada@example.com"})

    assert response.status_code == 503
    assert UNAVAILABLE in text(response)
    assert not mocked.calls
    row = ResendAttempt.objects.get()
    assert row.outcome == Outcome.MISCONFIGURED
    assert f"BETATEL_RESET['{name}']" in row.detail


def test_a_failing_token_provider_answers_503_not_500(client: Any, settings: Any) -> None:
    def provider(request: Any) -> str:
        raise RuntimeError("vault is down")

    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "TOKEN_PROVIDER": provider}
    response = client.post("/reset-password/resend/", {"email": "ada@example.com"})
    assert response.status_code == 503
    assert "vault" not in response.content.decode()
