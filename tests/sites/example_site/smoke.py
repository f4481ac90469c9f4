"""Drives the installed site the way a person would, with Django's test client.

Prints one JSON object of findings for the test to check.
"""

import json
import os
import re

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_site.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

import betatel_reset  # noqa: E402

SENT = "a new reset link will arrive there within a few minutes"

setup_test_environment()
Member = get_user_model()
Member.objects.filter(email__in=["boss@example.com", "ada@example.com"]).delete()
boss = Member.objects.create_superuser("boss@example.com", "pw")
ada = Member.objects.create_user("ada@example.com", "pw")


def layout(html):
    stylesheet = re.search(
        r'<link rel="stylesheet" href="(/static/betatel_reset/[^"]+\.css)">', html
    )
    return {
        "in_layout": 'id="example-site-layout"' in html,
        "title": re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip(),
        "mains": html.count("<main"),
        "stylesheet": stylesheet.group(1) if stylesheet else None,
        "site_css": "/static/css/project." in html,
    }


client = Client()
page = client.get("/reset-password/resend/")
expired = client.get("/reset-password/expired/")
resend = layout(page.content.decode())
stylesheet = client.get(resend["stylesheet"]) if resend["stylesheet"] else None
posted = client.post("/reset-password/resend/", {"email": "ada@example.com"}, follow=True)
posted_html = posted.content.decode()

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
change_page = staff.get(f"/staff/members/member/{ada.pk}/change/")
button = re.search(
    r'<form method="post" action="([^"]+/send/[^"]+)">', change_page.content.decode()
)
pressed = staff.post(button.group(1), follow=True) if button else None

print(
    json.dumps(
        {
            "app_file": betatel_reset.__file__,
            "resend_status": page.status_code,
            "resend": resend,
            "expired_status": expired.status_code,
            "expired": layout(expired.content.decode()),
            "stylesheet_status": stylesheet.status_code if stylesheet else None,
            "posted_status": posted.status_code,
            "posted_message_count": posted_html.count(SENT),
            "changelist_status": changelist.status_code,
            "action_offered": 'value="resend_reset_email_action"' in changelist.content.decode(),
            "confirm_status": confirm.status_code,
            "confirm_lists_address": "<li>ada@example.com</li>" in confirm.content.decode(),
            "sent_status": sent.status_code,
            "admin_messages": [str(m) for m in sent.context["messages"]] if sent.context else [],
            "change_page_status": change_page.status_code,
            "button": bool(button),
            "button_messages": (
                [str(m) for m in pressed.context["messages"]]
                if pressed and pressed.context
                else []
            ),
            "button_landed_on": pressed.redirect_chain[0][0] if pressed else None,
        }
    )
)
