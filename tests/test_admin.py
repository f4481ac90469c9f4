"""The admin: the resend actions on the user admin, the audit trail, the
change-page button, auto-attaching and its system check."""

from __future__ import annotations

import datetime
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.context_processors import PermWrapper
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.checks import run_checks
from django.core.exceptions import PermissionDenied
from django.core.signals import request_started
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

import betatel_reset
from betatel_reset import dispatch
from betatel_reset.admin import (
    USER_ACTIONS,
    ResendResetEmailMixin,
    attach_user_actions,
    auto_attach,
    clear_rate_limits_action,
    resend_reset_email_action,
)
from betatel_reset.backends import locmem
from betatel_reset.choices import Outcome, Source
from betatel_reset.exceptions import RateLimitExceeded
from betatel_reset.models import ResendAttempt
from betatel_reset.services import resend_reset_email

from .conftest import TOKEN, expect_resends, grant
from .support.real_services import run_scenarios

pytestmark = pytest.mark.django_db

User = get_user_model()
CHANGELIST = "admin:auth_user_changelist"
AUDIT = "admin:betatel_reset_resendattempt_changelist"
ACTION = "resend_reset_email_action"
STAFF_PERMS = ["auth.view_user", "auth.change_user", "betatel_reset.view_resendattempt"]
SEND_PERM = "betatel_reset.send_reset_email"


def make_staff(username: str, *perms: str) -> Any:
    user = User.objects.create_user(username, f"{username}@staff.example", "pw", is_staff=True)
    return grant(user, *perms)


@pytest.fixture
def users() -> dict[str, Any]:
    return {
        "ada": User.objects.create_user("ada", "ada@example.com"),
        "grace": User.objects.create_user("grace", "grace@Example.COM"),
        "nomail": User.objects.create_user("nomail", ""),
        "sleeper": User.objects.create_user("sleeper", "sleeper@example.com", is_active=False),
    }


@pytest.fixture
def boss() -> Any:
    return make_staff("boss", *STAFF_PERMS, SEND_PERM)


@pytest.fixture
def boss_client(client: Client, boss: Any) -> Client:
    client.force_login(boss)
    return client


def pks(*users: Any) -> list[str]:
    return [str(user.pk) for user in users]


def run_action(client: Client, action: str, selected: list[str], **data: Any) -> Any:
    """POST an action to the user changelist, as its form does, following the redirect."""
    return client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": selected, **data},
        follow=True,
    )


def texts(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def action_names(client: Client, url: str = CHANGELIST) -> list[str]:
    response = client.get(reverse(url))
    assert response.status_code == 200
    form = response.context["action_form"]  # None when no action is available
    return [name for name, _label in form.fields["action"].choices] if form else []


# Who sees the actions ----------------------------------------------------------


def test_actions_show_only_with_the_permission(client: Client) -> None:
    client.force_login(make_staff("clerk", *STAFF_PERMS))
    assert ACTION not in action_names(client)
    assert "clear_rate_limits_action" not in action_names(client)

    client.force_login(make_staff("support", *STAFF_PERMS, SEND_PERM))
    assert ACTION in action_names(client)
    assert "clear_rate_limits_action" in action_names(client)


def test_superusers_see_the_actions(client: Client) -> None:
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    assert ACTION in action_names(client)


def test_running_the_action_without_the_permission_sends_nothing(
    client: Client, users: dict[str, Any], locmem_backend: None
) -> None:
    client.force_login(make_staff("clerk", *STAFF_PERMS))
    response = run_action(client, ACTION, pks(users["ada"]), post="yes")
    assert response.status_code == 200
    assert locmem.outbox == []
    assert not ResendAttempt.objects.exists()


@pytest.mark.parametrize(
    ("action", "done", "sent"),
    [
        (resend_reset_email_action, "1 sent, 0 failed, 0 skipped.", ["ada@example.com"]),
        (clear_rate_limits_action, "Cleared the resend rate limits of 1 address.", []),
    ],
    ids=["resend", "clear-rate-limits"],
)
def test_each_action_checks_the_permission_itself(
    users: dict[str, Any], locmem_backend: None, action: Any, done: str, sent: list[str]
) -> None:
    # The changelist offers an action only to whoever may run it; the action
    # checks again, for a site that calls it some other way.
    model_admin = admin.site.get_model_admin(User)
    ada = User.objects.filter(pk=users["ada"].pk)

    def request_by(user: Any) -> Any:
        request = RequestFactory().post(
            reverse(CHANGELIST), {"action": action.__name__, "post": "yes"}
        )
        request.user = user
        request._messages = CookieStorage(request)
        return request

    refused = request_by(make_staff("clerk", *STAFF_PERMS))
    with pytest.raises(PermissionDenied):
        action(model_admin, refused, ada)
    assert list(get_messages(refused)) == []
    assert locmem.outbox == []
    assert not ResendAttempt.objects.exists()

    allowed = request_by(make_staff("support", *STAFF_PERMS, SEND_PERM))
    assert action(model_admin, allowed, ada) is None
    [message] = [str(m) for m in get_messages(allowed)]
    assert message.startswith(done)
    assert [r.email for r in locmem.outbox] == sent


# The confirmation page ---------------------------------------------------------


def test_confirmation_page(boss_client: Client, users: dict[str, Any]) -> None:
    selected = pks(*users.values())
    response = run_action(boss_client, ACTION, selected, index="0")

    assert response.status_code == 200
    assert "admin/betatel_reset/resend_confirmation.html" in [t.name for t in response.templates]
    page = response.content.decode()
    assert "You selected 4 users." in page
    assert "Reset-password emails will be resent to 2 addresses." in page
    assert "2 users will be skipped." in page
    assert "ada &lt;ada@example.com&gt;" in page
    assert "grace &lt;grace@example.com&gt;" in page  # the domain as it will be sent
    assert "nomail: no email address" in page
    assert "sleeper: inactive" in page
    assert "sent while you wait, 8 at a time" in page
    for pk in selected:
        assert f'<input type="hidden" name="_selected_action" value="{pk}">' in page
    assert f'<input type="hidden" name="action" value="{ACTION}">' in page
    assert '<input type="hidden" name="post" value="yes">' in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert 'name="index"' not in page  # the re-post must reach the confirmation branch
    assert locmem.outbox == []
    assert not ResendAttempt.objects.exists()


def test_confirmation_page_names_users_once_and_by_id_without_a_name(
    boss_client: Client,
) -> None:
    as_address = User.objects.create_user("Boss@example.com", "boss@example.com")
    unnamed = User.objects.create(username="", email="")  # e.g. imported, never signed up
    page = run_action(boss_client, ACTION, pks(as_address, unnamed), index="0").content.decode()

    # Email-as-username: the address once, not "boss@example.com <boss@example.com>".
    assert "<li>boss@example.com</li>" in page
    assert "&lt;boss@example.com&gt;" not in page
    assert f"<li>user #{unnamed.pk}: no email address</li>" in page
    assert "<li>: no email address</li>" not in page


def test_confirmation_page_repeats_a_selection_of_all_matching_users(
    boss_client: Client, users: dict[str, Any]
) -> None:
    response = run_action(boss_client, ACTION, pks(users["ada"]), index="0", select_across="1")
    page = response.content.decode()
    assert '<input type="hidden" name="select_across" value="1">' in page
    assert page.count('name="_selected_action"') == 1
    # Every user matches, not only the one ticked: the three staff-less ones
    # plus the admin themselves.
    assert "You selected 5 users." in page


def test_skips_repeated_and_invalid_addresses(boss_client: Client) -> None:
    one = User.objects.create_user("one", "same@example.com")
    two = User.objects.create_user("two", "SAME@example.com")
    odd = User.objects.create_user("odd", "not-an-address")
    page = run_action(boss_client, ACTION, pks(one, two, odd), index="0").content.decode()
    assert "two: same address as another selected user" in page
    assert "odd: not a valid email address" in page


# Sending -----------------------------------------------------------------------


def test_post_yes_sends_and_summarises(
    boss_client: Client, boss: Any, users: dict[str, Any], mocked: responses.RequestsMock
) -> None:
    expect_resends(mocked, sent="ada@example.com", unknown="grace@example.com")
    before = timezone.now().replace(microsecond=0)

    response = run_action(boss_client, ACTION, pks(*users.values()), post="yes")

    assert response.redirect_chain[-1][0] == reverse(CHANGELIST)
    [message] = texts(response)
    assert message.startswith("1 sent, 1 failed (Unknown account: 1), 2 skipped.")
    # Each call as Betatel expects it.
    assert len(mocked.calls) == 2
    for call in mocked.calls:
        assert call.request.method == "POST"
        assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    # The audit trail, with the acting admin.
    rows = {row.email: row for row in ResendAttempt.objects.all()}
    assert set(rows) == {"ada@example.com", "grace@example.com"}
    assert rows["ada@example.com"].outcome == Outcome.SENT
    assert rows["grace@example.com"].outcome == Outcome.UNKNOWN_ACCOUNT
    assert {row.source for row in rows.values()} == {Source.ADMIN}
    assert {row.actor for row in rows.values()} == {boss}
    # The message links to exactly those rows.
    href = message.split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    url = urlsplit(href)
    assert url.path == reverse(AUDIT)
    query = parse_qs(url.query)
    assert query["source__exact"] == ["admin"]
    assert query["actor__exact"] == [str(boss.pk)]
    assert datetime.datetime.fromisoformat(query["created_at__gte"][0]) >= before
    listed = boss_client.get(href)
    assert listed.status_code == 200
    assert {row.email for row in listed.context["cl"].result_list} == set(rows)


def test_admin_sends_ignore_the_public_rate_limits(
    boss_client: Client, users: dict[str, Any], settings: Any, locmem_backend: None
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "RATE_LIMIT_EMAIL": "1/h"}
    public = RequestFactory().post("/")
    resend_reset_email("ada@example.com", request=public, source=Source.WEB)
    with pytest.raises(RateLimitExceeded):
        resend_reset_email("ada@example.com", request=public, source=Source.WEB)

    response = run_action(boss_client, ACTION, pks(users["ada"]), post="yes")

    assert texts(response)[0].startswith("1 sent, 0 failed, 0 skipped.")
    assert [r.email for r in locmem.outbox] == ["ada@example.com", "ada@example.com"]
    assert ResendAttempt.objects.filter(source=Source.ADMIN, outcome=Outcome.SENT).count() == 1


def test_selections_over_the_inline_cap_are_refused(
    boss_client: Client, users: dict[str, Any], settings: Any, locmem_backend: None
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "INLINE_MAX_BATCH": 1}
    response = run_action(boss_client, ACTION, pks(users["ada"], users["grace"]), index="0")
    [message] = texts(response)
    assert "2 addresses are too many to send to while you wait (the limit is 1)" in message
    assert "django-tasks-db" in message
    assert "manage.py betatel_resend" in message
    assert locmem.outbox == []


def test_a_misconfigured_site_is_reported_not_summarised(
    boss_client: Client, users: dict[str, Any], settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The immediate backend records the failure in the task result; the
    # action reads it from there. The admin reads a translated sentence; the
    # English detail goes to the log.
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "TOKEN": None}
    response = run_action(boss_client, ACTION, pks(users["ada"]), post="yes")
    [message] = texts(response)
    assert message.startswith("Sending stopped: the site is misconfigured. Run “manage.py check”")
    assert "No Betatel API token" not in message
    assert "No Betatel API token" in caplog.text
    assert ResendAttempt.objects.get().outcome == Outcome.MISCONFIGURED


def test_a_setting_the_admin_cannot_use_is_reported_before_the_confirmation_page(
    boss_client: Client, users: dict[str, Any], settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "INLINE_CONCURRENCY": "8"}
    response = run_action(boss_client, ACTION, pks(users["ada"]))
    assert response.status_code == 200
    [message] = texts(response)
    assert message.startswith("Sending stopped: the site is misconfigured. Run “manage.py check”")
    assert "BETATEL_RESET['INLINE_CONCURRENCY']" in caplog.text
    assert not ResendAttempt.objects.exists()


def test_sends_inline_without_a_tasks_framework(
    boss_client: Client,
    users: dict[str, Any],
    locmem_backend: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Django 5.2 without the django-tasks backport: betatel_reset.tasks cannot
    # be imported, and the admin sends in the request all the same.
    monkeypatch.setitem(sys.modules, "betatel_reset.tasks", None)
    monkeypatch.delattr(betatel_reset, "tasks", raising=False)
    assert dispatch._tasks_module() is None
    response = run_action(boss_client, ACTION, pks(users["ada"], users["grace"]), post="yes")
    assert texts(response)[0].startswith("2 sent, 0 failed, 0 skipped.")
    assert sorted(r.email for r in locmem.outbox) == ["ada@example.com", "grace@example.com"]


def test_all_skipped(boss_client: Client, users: dict[str, Any], locmem_backend: None) -> None:
    response = run_action(boss_client, ACTION, pks(users["nomail"], users["sleeper"]), post="yes")
    assert texts(response) == ["No reset-password email sent: all 2 selected users were skipped."]
    assert locmem.outbox == []


def test_clear_rate_limits_action(
    boss_client: Client, users: dict[str, Any], settings: Any, locmem_backend: None
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "RATE_LIMIT_EMAIL": "1/h"}
    public = RequestFactory().post("/")
    resend_reset_email("ada@example.com", request=public)
    with pytest.raises(RateLimitExceeded):
        resend_reset_email("ada@example.com", request=public)

    response = run_action(boss_client, "clear_rate_limits_action", pks(users["ada"]))

    assert texts(response) == ["Cleared the resend rate limits of 1 address."]
    resend_reset_email("ada@example.com", request=public)  # allowed again


# The audit trail ---------------------------------------------------------------


def attempt(email: str, outcome: Outcome, minutes_ago: int = 0, **kwargs: Any) -> ResendAttempt:
    return ResendAttempt.objects.create(
        email=email,
        source=kwargs.pop("source", Source.WEB),
        outcome=outcome,
        created_at=timezone.now() - datetime.timedelta(minutes=minutes_ago),
        **kwargs,
    )


def test_audit_trail_is_read_only(client: Client) -> None:
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    row = attempt("ada@example.com", Outcome.FAILED, status_code=503, duration_ms=12)
    changelist = client.get(reverse(AUDIT))
    assert changelist.status_code == 200
    assert not changelist.context["has_add_permission"]
    assert action_names(client, AUDIT) == [
        "",
        "retry_failed_attempts",
        "retry_uncertain_attempts",
        "clear_rate_limits_for_addresses",
    ]
    assert client.get(reverse("admin:betatel_reset_resendattempt_add")).status_code == 403
    change_url = reverse("admin:betatel_reset_resendattempt_change", args=[row.pk])
    page = client.get(change_url)
    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    assert client.post(change_url, {"email": "x@example.com"}).status_code == 403
    delete_url = reverse("admin:betatel_reset_resendattempt_delete", args=[row.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert ResendAttempt.objects.get().email == "ada@example.com"


def test_audit_trail_filters_and_search(boss_client: Client) -> None:
    attempt("ada@example.com", Outcome.SENT, source=Source.ADMIN)
    attempt("bob@example.com", Outcome.FAILED)
    attempt("carol@example.com", Outcome.UNKNOWN_ACCOUNT, minutes_ago=60 * 24 * 3)

    def listed(**query: str) -> set[str]:
        response = boss_client.get(reverse(AUDIT), query)
        assert response.status_code == 200
        return {row.email for row in response.context["cl"].result_list}

    assert listed() == {"ada@example.com", "bob@example.com", "carol@example.com"}
    assert listed(outcome__exact="failed") == {"bob@example.com"}
    assert listed(source__exact="admin") == {"ada@example.com"}
    assert listed(q="carol") == {"carol@example.com"}
    since = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    assert listed(created_at__gte=since) == {"ada@example.com", "bob@example.com"}
    headers = [
        str(header["text"]) for header in boss_client.get(reverse(AUDIT)).context["result_headers"]
    ]
    assert headers[1:] == [
        "when",
        "address",
        "source",
        "outcome",
        "Betatel status",
        "duration (ms)",
        "by",
    ]


def test_retry_selected_failed_attempts(boss_client: Client, boss: Any, settings: Any) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "BACKEND": "locmem"}
    failed = attempt("ada@example.com", Outcome.FAILED, minutes_ago=5)
    sent_since = attempt("bob@example.com", Outcome.UPSTREAM_RATE_LIMITED, minutes_ago=5)
    attempt("bob@example.com", Outcome.SENT, minutes_ago=1)
    already_ok = attempt("carol@example.com", Outcome.SENT, minutes_ago=5)

    response = boss_client.post(
        reverse(AUDIT),
        {
            "action": "retry_failed_attempts",
            "_selected_action": [str(failed.pk), str(sent_since.pk), str(already_ok.pk)],
        },
        follow=True,
    )

    assert texts(response)[0].startswith("1 sent, 0 failed, 1 skipped.")
    assert [r.email for r in locmem.outbox] == ["ada@example.com"]
    retry = ResendAttempt.objects.filter(source=Source.ADMIN).get()
    assert (retry.email, retry.outcome, retry.actor) == ("ada@example.com", Outcome.SENT, boss)


def retry(client: Client, action: str, *rows: ResendAttempt) -> Any:
    return client.post(
        reverse(AUDIT),
        {"action": action, "_selected_action": [str(row.pk) for row in rows]},
        follow=True,
    )


def test_attempts_that_may_have_been_sent_are_shown_as_such(boss_client: Client) -> None:
    attempt("ada@example.com", Outcome.UNCERTAIN)
    attempt("bob@example.com", Outcome.FAILED)

    response = boss_client.get(reverse(AUDIT), {"outcome__exact": "uncertain"})

    assert [row.email for row in response.context["cl"].result_list] == ["ada@example.com"]
    assert "May have been sent" in response.content.decode()


def test_retrying_failures_leaves_out_attempts_that_may_have_been_sent(
    boss_client: Client, settings: Any
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "BACKEND": "locmem"}
    failed = attempt("ada@example.com", Outcome.FAILED, minutes_ago=5)
    perhaps = attempt("bob@example.com", Outcome.UNCERTAIN, minutes_ago=5)
    failed_then_perhaps = attempt("carol@example.com", Outcome.FAILED, minutes_ago=10)
    attempt("carol@example.com", Outcome.UNCERTAIN, minutes_ago=2)

    response = retry(boss_client, "retry_failed_attempts", failed, perhaps, failed_then_perhaps)

    # Bob's email may be in his inbox; so may Carol's, since her failure.
    assert [r.email for r in locmem.outbox] == ["ada@example.com"]
    note, summary = texts(response)
    assert note == (
        "1 selected attempt may have been sent, so it was not retried. To send it again "
        "anyway, use “Retry attempts that may have been sent”."
    )
    assert summary.startswith("1 sent, 0 failed, 1 skipped.")


def test_retrying_failures_when_all_may_have_been_sent_sends_nothing(
    boss_client: Client, settings: Any
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "BACKEND": "locmem"}
    rows = [attempt(f"{name}@example.com", Outcome.UNCERTAIN) for name in ("ada", "bob")]

    response = retry(boss_client, "retry_failed_attempts", *rows)

    assert locmem.outbox == []
    assert texts(response) == [
        "2 selected attempts may have been sent, so they were not retried. To send them "
        "again anyway, use “Retry attempts that may have been sent”."
    ]


def test_attempts_that_may_have_been_sent_are_retried_when_asked_for(
    boss_client: Client, boss: Any, settings: Any
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "BACKEND": "locmem"}
    perhaps = attempt("ada@example.com", Outcome.UNCERTAIN, minutes_ago=5)
    sent_since = attempt("bob@example.com", Outcome.UNCERTAIN, minutes_ago=5)
    attempt("bob@example.com", Outcome.SENT, minutes_ago=1)
    failed = attempt("carol@example.com", Outcome.FAILED, minutes_ago=5)

    response = retry(boss_client, "retry_uncertain_attempts", perhaps, sent_since, failed)

    assert texts(response)[0].startswith("1 sent, 0 failed, 1 skipped.")
    assert [r.email for r in locmem.outbox] == ["ada@example.com"]
    again = ResendAttempt.objects.filter(source=Source.ADMIN).get()
    assert (again.email, again.outcome, again.actor) == ("ada@example.com", Outcome.SENT, boss)


def test_retrying_uncertain_attempts_among_none_says_so(
    boss_client: Client, settings: Any
) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "BACKEND": "locmem"}
    failed = attempt("ada@example.com", Outcome.FAILED)

    response = retry(boss_client, "retry_uncertain_attempts", failed)

    assert locmem.outbox == []
    assert texts(response) == ["No selected attempt is marked “May have been sent”."]


def test_audit_actions_need_the_permission(client: Client) -> None:
    client.force_login(make_staff("auditor", "betatel_reset.view_resendattempt"))
    assert action_names(client, AUDIT) == []


# The button on a user's change page ------------------------------------------

BUTTON = "admin/betatel_reset/includes/send_reset_email_button.html"


def test_change_page_button_sends(
    boss_client: Client, boss: Any, users: dict[str, Any], locmem_backend: None
) -> None:
    ada = users["ada"]
    send_url = reverse("admin:betatel_reset_resendattempt_send", args=[ada.pk])
    page = boss_client.get(reverse("admin:auth_user_change", args=[ada.pk])).content.decode()
    # The demo's own admin/auth/user/change_form.html includes the button: once.
    assert page.count(f'action="{send_url}"') == 1
    assert "Send reset email" in page

    response = boss_client.post(send_url, follow=True)

    assert response.redirect_chain[0][0] == reverse("admin:auth_user_change", args=[ada.pk])
    assert texts(response)[0].startswith("Sent a reset-password email to ada@example.com.")
    assert [r.email for r in locmem.outbox] == ["ada@example.com"]
    row = ResendAttempt.objects.get()
    assert (row.source, row.actor) == (Source.ADMIN, boss)


def test_change_page_button_explains_a_skip(
    boss_client: Client, users: dict[str, Any], locmem_backend: None
) -> None:
    send_url = reverse("admin:betatel_reset_resendattempt_send", args=[users["sleeper"].pk])
    response = boss_client.post(send_url, follow=True)
    assert texts(response) == ["No reset-password email sent to sleeper: inactive."]
    assert locmem.outbox == []


def test_change_page_button_is_post_only_and_needs_the_permission(
    client: Client, users: dict[str, Any], locmem_backend: None
) -> None:
    send_url = reverse("admin:betatel_reset_resendattempt_send", args=[users["ada"].pk])
    client.force_login(make_staff("clerk", *STAFF_PERMS))
    page = client.get(reverse("admin:auth_user_change", args=[users["ada"].pk]))
    assert send_url not in page.content.decode()
    assert client.post(send_url).status_code == 403

    # Without access to users, the button would tell whose address a pk has.
    client.force_login(make_staff("auditor", "betatel_reset.view_resendattempt", SEND_PERM))
    assert client.post(send_url).status_code == 403

    client.force_login(make_staff("support", *STAFF_PERMS, SEND_PERM))
    assert client.get(send_url).status_code == 405
    missing = reverse("admin:betatel_reset_resendattempt_send", args=[0])
    assert client.post(missing).status_code == 404
    assert locmem.outbox == []


def test_the_button_leaves_a_sites_own_change_form_alone(settings: Any) -> None:
    site = admin.AdminSite(name="own-form")

    class OwnFormUserAdmin(UserAdmin):
        change_form_template = "admin/members/own_change_form.html"

    site.register(User, OwnFormUserAdmin)
    assert attach_user_actions(site).change_form_template == "admin/members/own_change_form.html"

    # The demo has admin/auth/user/change_form.html: it is not bypassed.
    demo = admin.AdminSite(name="demo-form")
    demo.register(User, UserAdmin)
    assert attach_user_actions(demo).change_form_template is None

    # Without either, the app's change form with the button.
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": []}]
    bare = admin.AdminSite(name="bare-form")
    bare.register(User, UserAdmin)
    model_admin = attach_user_actions(bare)
    assert model_admin.change_form_template == "admin/betatel_reset/user_change_form.html"
    assert UserAdmin.change_form_template is None


def test_no_button_where_the_admin_site_has_no_audit_trail(
    boss: Any, users: dict[str, Any], settings: Any
) -> None:
    """No view to post to: no button, and no NoReverseMatch breaking the page."""
    context = {"original": users["ada"], "perms": PermWrapper(boss)}
    assert "Send reset email" in render_to_string(BUTTON, context)
    settings.ROOT_URLCONF = "betatel_reset.urls"  # no admin at all
    assert "Send reset email" not in render_to_string(BUTTON, context)


# Attaching to the site's user admin ------------------------------------------


def test_attached_to_the_registered_user_admin_without_replacing_it() -> None:
    model_admin = admin.site.get_model_admin(User)
    assert type(model_admin) is UserAdmin
    assert resend_reset_email_action in model_admin.actions
    assert clear_rate_limits_action in model_admin.actions
    assert resend_reset_email_action not in (UserAdmin.actions or ())
    assert not hasattr(UserAdmin, "has_send_reset_email_permission")


class SiteUserAdmin(UserAdmin):
    """A site's own user admin, with an action of its own."""

    actions = ["own_action"]

    @admin.action(description="Own action")
    def own_action(self, request: Any, queryset: Any) -> None:
        pass


def test_attach_adds_to_a_custom_user_admin_once() -> None:
    site = admin.AdminSite(name="site")
    site.register(User, SiteUserAdmin)
    model_admin = site.get_model_admin(User)

    attach_user_actions(site)
    attach_user_actions(site)

    assert site.get_model_admin(User) is model_admin
    assert type(model_admin) is SiteUserAdmin
    assert model_admin.actions == [
        "own_action",
        resend_reset_email_action,
        clear_rate_limits_action,
    ]
    assert SiteUserAdmin.actions == ["own_action"]
    request = RequestFactory().get("/")
    request.user = User.objects.create_superuser("root", "root@example.com", "pw")
    assert set(model_admin.get_actions(request)) >= {"own_action", "resend_reset_email_action"}
    request.user = make_staff("clerk", *STAFF_PERMS)
    assert "resend_reset_email_action" not in model_admin.get_actions(request)


def test_attach_leaves_an_admin_without_actions_alone() -> None:
    class NoActions(UserAdmin):
        actions = None

    site = admin.AdminSite(name="site")
    site.register(User, NoActions)
    attach_user_actions(site)
    assert site.get_model_admin(User).actions is None


class MixinUserAdmin(ResendResetEmailMixin, UserAdmin):
    actions = ["own_action"]

    @admin.action(description="Own action")
    def own_action(self, request: Any, queryset: Any) -> None:
        pass


def test_the_mixin_adds_the_actions_for_permitted_users() -> None:
    site = admin.AdminSite(name="site")
    site.register(User, MixinUserAdmin)
    model_admin = site.get_model_admin(User)
    attach_user_actions(site)  # nothing more to add

    assert model_admin.actions == ["own_action", *USER_ACTIONS]
    assert MixinUserAdmin.actions == ["own_action"]
    request = RequestFactory().get("/")
    request.user = User.objects.create_superuser("root", "root@example.com", "pw")
    assert set(model_admin.get_actions(request)) == {
        "delete_selected",
        "own_action",
        "resend_reset_email_action",
        "clear_rate_limits_action",
    }
    request.user = make_staff("clerk", *STAFF_PERMS)
    assert "resend_reset_email_action" not in model_admin.get_actions(request)


def test_attach_waits_for_a_user_admin_registered_later(client: Client) -> None:
    # As when betatel_reset comes before the admin in INSTALLED_APPS.
    site = admin.AdminSite(name="site")
    auto_attach(site)
    site.register(User, SiteUserAdmin)
    assert resend_reset_email_action not in site.get_model_admin(User).actions

    client.get("/")  # any request

    assert resend_reset_email_action in site.get_model_admin(User).actions
    assert not any(
        "auto_attach" in str(key) for key, *_rest in request_started.receivers
    )  # it disconnected itself


def test_auto_attach_is_off_with_the_setting(settings: Any) -> None:
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "ADMIN_ACTION": False}
    site = admin.AdminSite(name="site")
    site.register(User, SiteUserAdmin)
    auto_attach(site)
    assert site.get_model_admin(User).actions == ["own_action"]


def test_auto_attach_leaves_the_admin_alone_when_the_setting_is_unusable(settings: Any) -> None:
    # check E007 names the value; the site still starts.
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "ADMIN_ACTION": "no"}
    site = admin.AdminSite(name="site")
    site.register(User, SiteUserAdmin)
    auto_attach(site)
    assert site.get_model_admin(User).actions == ["own_action"]


def test_w004_user_model_not_in_the_admin(settings: Any) -> None:
    def ids() -> list[str]:
        return sorted(m.id or "" for m in run_checks() if (m.id or "").startswith("betatel_"))

    registered = admin.site._registry.pop(User)
    try:
        assert ids() == ["betatel_reset.W004"]
        settings.BETATEL_RESET = {**settings.BETATEL_RESET, "ADMIN_ACTION": False}
        assert ids() == []
    finally:
        admin.site._registry[User] = registered
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "ADMIN_ACTION": True}
    assert ids() == []


# A custom user model -----------------------------------------------------------


def test_custom_user_model_and_custom_admin() -> None:
    """tests/support/custom_user_scenarios.py, in its own process: AUTH_USER_MODEL is
    fixed per process."""
    run_scenarios("tests.support.settings.custom_user", "tests/support/custom_user_scenarios.py")
