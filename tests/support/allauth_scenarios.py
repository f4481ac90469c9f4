"""django-allauth's password reset from key with betatel_reset.links' recipe.

Run in a process of its own (``--ds=tests.support.settings.allauth_site``) by
``tests/test_links.py::test_allauth_flow``.
"""

from __future__ import annotations

import datetime

import pytest
from allauth.account.forms import EmailAwarePasswordResetTokenGenerator, default_token_generator
from allauth.account.models import EmailAddress
from allauth.account.utils import user_pk_to_url_str
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import Client

from betatel_reset.links import expired_page_url

pytestmark = pytest.mark.django_db

ADDRESS = "ada@example.com"


class FourDaysAgo(EmailAwarePasswordResetTokenGenerator):
    def _now(self) -> datetime.datetime:
        return datetime.datetime.now() - datetime.timedelta(days=4)


@pytest.fixture
def ada() -> User:
    user = User.objects.create_user("ada", ADDRESS, "old-password")
    EmailAddress.objects.create(user=user, email=ADDRESS, primary=True, verified=True)
    return user


def key_url(user: User, key: str) -> str:
    return f"/accounts/password/reset/key/{user_pk_to_url_str(user)}-{key}/"


def shows_no_address(response: HttpResponse) -> None:
    everything = response.content.decode() + repr(sorted(response.items()))
    assert "ada" not in everything.replace("%40", "@").lower()


def test_a_genuine_expired_key_goes_to_the_expired_page_prefilled(
    client: Client, ada: User
) -> None:
    response = client.get(key_url(ada, FourDaysAgo().make_token(ada)))

    assert response.status_code == 302
    assert response["Location"] == expired_page_url(ADDRESS)
    page = client.get(response["Location"], follow=True)
    assert f'value="{ADDRESS}"' in page.content.decode()


def test_a_fresh_key_goes_on_to_set_a_password(client: Client, ada: User) -> None:
    response = client.get(key_url(ada, default_token_generator.make_token(ada)))

    assert response.status_code == 302
    assert response["Location"] == key_url(ada, "set-password")
    assert "expired" not in response["Location"]


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda good: good[:-1] + ("0" if good[-1] != "0" else "1"), id="hash"),
        pytest.param(lambda good: "c2mx4z-" + "0" * 32, id="made-up"),
        pytest.param(lambda good: "garbage", id="malformed"),
    ],
)
def test_a_forged_key_gets_the_invalid_page_and_no_address(
    client: Client, ada: User, forge: object
) -> None:
    response = client.get(key_url(ada, forge(FourDaysAgo().make_token(ada))))  # type: ignore[operator]

    assert response.status_code == 200
    assert response.context["token_fail"] is True
    shows_no_address(response)


def test_an_unknown_or_malformed_user_id_reveals_nothing(client: Client, ada: User) -> None:
    key = FourDaysAgo().make_token(ada)
    for uid in ["zzzzzzzzzzzzzzzz", "0"]:
        response = client.get(f"/accounts/password/reset/key/{uid}-{key}/")
        assert response.status_code == 200
        shows_no_address(response)
