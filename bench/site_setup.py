"""``python -m bench.site_setup``: migrate the bench site's database and create
the account both password-reset forms are posted for (idempotent)."""

from __future__ import annotations

import os


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.site_settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    ensure_user(get_user_model(), settings.BENCH_USER_EMAIL)


def ensure_user(user_model: object, email: str) -> None:
    manager = user_model._default_manager  # type: ignore[attr-defined]
    if not manager.filter(email=email).exists():
        manager.create_user("ada", email, "correct horse battery staple")


if __name__ == "__main__":
    main()
