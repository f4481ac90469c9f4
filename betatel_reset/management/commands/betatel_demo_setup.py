"""``manage.py betatel_demo_setup``: a staff login and a few users to try the
admin actions on. Only with ``DEBUG`` on; safe to run again."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from betatel_reset.conf import app_settings

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"  # noqa: S105 - a demo login, refused without DEBUG

#: (username, address, active): one without an address, one inactive.
SAMPLE_USERS = [
    ("ada", "ada@example.com", True),
    ("grace", "grace@example.com", True),
    ("linus", "linus@example.com", True),
    ("nomail", "", True),
    ("sleeper", "sleeper@example.com", False),
]


class Command(BaseCommand):
    help = (
        "Create a superuser admin/admin and a few sample users for trying the admin "
        "actions (DEBUG only; idempotent)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not app_settings.DEBUG:
            raise CommandError(
                "betatel_demo_setup only runs with DEBUG on: it creates the login admin/admin."
            )
        user_model = get_user_model()
        manager = user_model._default_manager
        username_field = user_model.USERNAME_FIELD
        email_field = user_model.get_email_field_name()

        admin, created = manager.get_or_create(
            **{username_field: ADMIN_USERNAME},
            defaults={email_field: "admin@example.com", "is_staff": True, "is_superuser": True},
        )
        if created:
            admin.set_password(ADMIN_PASSWORD)
            admin.save()
            self.stdout.write(f"Created the superuser {ADMIN_USERNAME} / {ADMIN_PASSWORD}.")
        else:
            self.stdout.write(f"The superuser {ADMIN_USERNAME} exists; its password is unchanged.")

        made = 0
        for username, address, active in SAMPLE_USERS:
            user, created = manager.get_or_create(
                **{username_field: username},
                defaults={email_field: address, "is_active": active},
            )
            if created:
                user.set_unusable_password()
                user.save()
                made += 1
        self.stdout.write(
            f"{made} sample users created ({len(SAMPLE_USERS) - made} already there): "
            + ", ".join(name for name, _address, _active in SAMPLE_USERS)
            + "."
        )
        self.stdout.write(
            "Log in at /admin/ as admin / admin, open Users, select some and choose "
            "“Resend reset-password email”."
        )
