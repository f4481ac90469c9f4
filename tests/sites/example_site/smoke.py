"""Drives the installed site the way a person would, with Django's test client.

Prints one JSON object of findings for the test to check.
"""

import json
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_site.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

import betatel_reset  # noqa: E402

setup_test_environment()
Member = get_user_model()
Member.objects.filter(handle__in=["boss", "ada"]).delete()
boss = Member.objects.create_superuser("boss", "boss@example.com", "pw")
ada = Member.objects.create_user("ada", "ada@example.com", "pw")

client = Client()
page = client.get("/account/lost-link/resend/")
posted = client.post("/account/lost-link/resend/", {"email": "ada@example.com"}, follow=True)
expired = client.get("/account/lost-link/expired/")

staff = Client()
staff.force_login(boss)
changelist = staff.get("/staff/members/member/")
confirm = staff.post(
    "/staff/members/member/",
    {"action": "resend_reset_email_action", "_selected_action": [ada.pk]},
)
sent = staff.post(
    "/staff/members/member/",
    {"action": "resend_reset_email_action", "_selected_action": [ada.pk], "post": "yes"},
    follow=True,
)

print(
    json.dumps(
        {
            "app_file": betatel_reset.__file__,
            "resend_status": page.status_code,
            "resend_in_layout": "example-site-layout" in page.content.decode(),
            "expired_in_layout": "example-site-layout" in expired.content.decode(),
            "posted_status": posted.status_code,
            "posted_message": "If an account exists" in posted.content.decode(),
            "changelist_status": changelist.status_code,
            "action_offered": 'value="resend_reset_email_action"' in changelist.content.decode(),
            "confirm_status": confirm.status_code,
            "confirm_lists_address": "ada@example.com" in confirm.content.decode(),
            "sent_status": sent.status_code,
            "admin_messages": [str(m) for m in sent.context["messages"]] if sent.context else [],
        }
    )
)
