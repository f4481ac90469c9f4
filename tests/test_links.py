"""betatel_reset.links: only a genuine link that has expired reveals its address.

Each flow with a genuine expired link (the expired page, address filled in),
a fresh link (the flow goes on as usual) and forged, malformed or used links
(the normal invalid-link page; the address nowhere in the answer)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.tokens import PasswordResetTokenGenerator, default_token_generator
from django.http import HttpResponse
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import int_to_base36, urlsafe_base64_encode

from betatel_reset.links import expired_page_url, reset_token_expired

from .support.real_services import run_scenarios

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.sites.reset_flows.urls")]

ADDRESS = "ada@example.com"


class FourDaysAgo(PasswordResetTokenGenerator):
    """Makes the tokens Django's generator made four days ago (the timeout is three)."""

    def _now(self) -> datetime.datetime:
        return datetime.datetime.now() - datetime.timedelta(days=4)


@pytest.fixture
def ada() -> User:
    return User.objects.create_user("ada", ADDRESS, "old-password")


def confirm_url(user: User, token: str) -> str:
    return f"/reset/{urlsafe_base64_encode(force_bytes(user.pk))}/{token}/"


def shows_no_address(response: HttpResponse) -> None:
    everything = response.content.decode() + repr(sorted(response.items()))
    assert "ada" not in everything.replace("%40", "@").lower()


def test_a_genuine_expired_link_goes_to_the_expired_page_prefilled(
    client: Client, ada: User
) -> None:
    response = client.get(confirm_url(ada, FourDaysAgo().make_token(ada)))

    assert response.status_code == 302
    assert response["Location"] == expired_page_url(ADDRESS)
    assert response["Referrer-Policy"] == "no-referrer"
    page = client.get(response["Location"], follow=True)
    assert f'value="{ADDRESS}"' in page.content.decode()


def test_a_fresh_link_goes_on_to_set_a_password(client: Client, ada: User) -> None:
    response = client.get(confirm_url(ada, default_token_generator.make_token(ada)))

    assert response.status_code == 302
    assert response["Location"].endswith("/set-password/")
    assert "expired" not in response["Location"]


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda good: good[:-1] + ("0" if good[-1] != "0" else "1"), id="hash"),
        pytest.param(lambda good: int_to_base36(1) + "-" + good.split("-")[1], id="timestamp"),
        pytest.param(lambda good: "c2mx4z-" + "0" * 32, id="made-up"),
        pytest.param(lambda good: "not-a-token-at-all", id="malformed"),
        pytest.param(lambda good: "zzzzzzzzzzzzzz-abc", id="huge-timestamp"),
        pytest.param(lambda good: "", id="empty-ish"),
    ],
)
def test_a_forged_link_gets_the_invalid_page_and_no_address(
    client: Client, ada: User, forge: Any
) -> None:
    token = forge(FourDaysAgo().make_token(ada)) or "x-y"
    response = client.get(confirm_url(ada, token))

    assert response.status_code == 200
    assert response.context["validlink"] is False
    shows_no_address(response)


def test_a_used_link_is_not_genuine_any_more(client: Client, ada: User) -> None:
    token = FourDaysAgo().make_token(ada)
    ada.set_password("new-password")
    ada.save()

    response = client.get(confirm_url(ada, token))

    assert response.status_code == 200
    shows_no_address(response)


def test_another_users_link_reveals_nothing(client: Client, ada: User) -> None:
    grace = User.objects.create_user("grace", "grace@example.com", "pw")
    response = client.get(confirm_url(ada, FourDaysAgo().make_token(grace)))

    assert response.status_code == 200
    shows_no_address(response)
    assert "grace" not in response.content.decode()


def test_betatel_link_lands_on_the_expired_page_without_an_address(client: Client) -> None:
    response = client.get("/betatel/reset-link/", {"email": ADDRESS, "token": "abc"})

    assert response.status_code == 302
    assert response["Location"] == expired_page_url()
    shows_no_address(response)


def test_reset_token_expired_is_false_for_a_valid_token(ada: User) -> None:
    assert reset_token_expired(ada, default_token_generator.make_token(ada)) is False
    assert reset_token_expired(ada, FourDaysAgo().make_token(ada)) is True
    assert reset_token_expired(None, FourDaysAgo().make_token(ada)) is False


def test_reset_token_expired_honours_secret_key_fallbacks(settings: Any, ada: User) -> None:
    token = FourDaysAgo().make_token(ada)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = (
        "rotated-" + "x" * 50,
        [settings.SECRET_KEY],
    )
    assert reset_token_expired(ada, token, PasswordResetTokenGenerator()) is True
    settings.SECRET_KEY_FALLBACKS = []
    assert reset_token_expired(ada, token, PasswordResetTokenGenerator()) is False


def test_allauth_flow() -> None:
    """tests/support/allauth_scenarios.py, in its own process: allauth's apps
    and URLs. django-allauth is an optional extra, installed by ``[dev]``."""
    pytest.importorskip("allauth", reason="django-allauth is not installed")
    run_scenarios("tests.support.settings.allauth_site", "tests/support/allauth_scenarios.py")
