"""The admin actions with a custom user model and the site's own user admin.

Run in a process of its own (``--ds=tests.support.settings.custom_user``) by
``tests/test_admin.py::test_custom_user_model_and_custom_admin``: the file name
keeps the main run, whose ``AUTH_USER_MODEL`` is ``auth.User``, from collecting it.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.core.checks import run_checks
from django.test import Client
from django.urls import reverse

from betatel_reset.admin import resend_reset_email_action
from betatel_reset.backends import locmem
from betatel_reset.choices import Source
from betatel_reset.models import ResendAttempt
from tests.conftest import grant
from tests.sites.custom_user.admin import MemberAdmin, make_staff
from tests.sites.custom_user.models import Member

pytestmark = pytest.mark.django_db

ACTION = "resend_reset_email_action"


def staff(handle: str, *perms: str) -> Member:
    member = Member.objects.create_user(handle, f"{handle}@staff.example", "pw", is_staff=True)
    return grant(member, *perms)


@pytest.fixture
def members() -> list[Member]:
    return [
        Member.objects.create_user("ada", "ada@example.com"),
        Member.objects.create_user("nomail", ""),
        Member.objects.create_user("sleeper", "sleeper@example.com", is_active=False),
    ]


@pytest.fixture
def support(client: Client) -> Member:
    member = staff("support", "custom_user.view_member", "betatel_reset.send_reset_email")
    client.force_login(member)
    return member


def action_names(client: Client, url: str) -> list[str]:
    form = client.get(url).context["action_form"]
    return [name for name, _label in form.fields["action"].choices] if form else []


def test_attached_lazily_to_the_sites_own_admin(client: Client, support: Member) -> None:
    # betatel_reset comes before the admin in INSTALLED_APPS here: the actions
    # arrive with the first request (this process's first: this test runs
    # first), on the site's MemberAdmin instance.
    assert resend_reset_email_action not in admin.site.get_model_admin(Member).actions
    names = action_names(client, reverse("admin:custom_user_member_changelist"))
    assert names == ["", "make_staff", ACTION, "clear_rate_limits_action"]
    model_admin = admin.site.get_model_admin(Member)
    assert type(model_admin) is MemberAdmin
    assert MemberAdmin.actions == [make_staff]  # the class is untouched
    assert resend_reset_email_action in model_admin.actions


def test_not_shown_without_the_permission(client: Client) -> None:
    client.force_login(staff("clerk", "custom_user.view_member"))
    names = action_names(client, reverse("admin:custom_user_member_changelist"))
    assert names == ["", "make_staff"]


def test_sends_to_the_custom_email_field(
    client: Client, support: Member, members: list[Member], locmem_backend: None
) -> None:
    url = reverse("admin:custom_user_member_changelist")
    selected = [str(member.pk) for member in members]
    page = client.post(url, {"action": ACTION, "_selected_action": selected, "index": "0"})
    content = page.content.decode()
    assert "ada &lt;ada@example.com&gt;" in content
    assert "nomail: no email address" in content
    assert "sleeper: inactive" in content

    response = client.post(
        url, {"action": ACTION, "_selected_action": selected, "post": "yes"}, follow=True
    )

    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith("1 sent, 0 failed, 2 skipped.")
    assert [r.email for r in locmem.outbox] == ["ada@example.com"]
    row = ResendAttempt.objects.get()
    assert (row.email, row.source, row.actor) == ("ada@example.com", Source.ADMIN, support)


def test_explicit_mixin_on_another_admin_site(
    client: Client, support: Member, members: list[Member], locmem_backend: None
) -> None:
    url = reverse("explicit:custom_user_member_changelist")
    assert ACTION in action_names(client, url)
    response = client.post(
        url,
        {"action": ACTION, "_selected_action": [str(members[0].pk)], "post": "yes"},
        follow=True,
    )
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith("1 sent, 0 failed, 0 skipped.")
    assert reverse("explicit:betatel_reset_resendattempt_changelist") in message


def test_the_checks_are_clean() -> None:
    assert [m.id for m in run_checks() if (m.id or "").startswith("betatel_reset.")] == []


def test_button_view_finds_custom_users(
    client: Client, support: Member, members: list[Member], locmem_backend: None
) -> None:
    url = reverse("admin:betatel_reset_resendattempt_send", args=[members[0].pk])
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:custom_user_member_change", args=[members[0].pk])
    assert [r.email for r in locmem.outbox] == ["ada@example.com"]


@pytest.mark.parametrize("namespace", ["admin", "explicit"])
def test_change_page_has_the_button_without_a_template_of_the_sites(
    client: Client, support: Member, members: list[Member], locmem_backend: None, namespace: str
) -> None:
    """No admin/custom_user/member/change_form.html exists: the app's own
    change form is set on the attached admin (or the mixin's)."""
    change_url = reverse(f"{namespace}:custom_user_member_change", args=[members[0].pk])
    send_url = reverse(f"{namespace}:betatel_reset_resendattempt_send", args=[members[0].pk])
    page = client.get(change_url).content.decode()
    assert page.count(f'action="{send_url}"') == 1
    assert "Send reset email" in page

    response = client.post(send_url, follow=True)
    assert response.redirect_chain[0][0] == change_url
    assert [r.email for r in locmem.outbox] == ["ada@example.com"]
    assert type(admin.site.get_model_admin(Member)).change_form_template is None
