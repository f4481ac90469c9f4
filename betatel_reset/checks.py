"""System checks: misconfiguration shows at startup, not at a user's first click.

=====================  =====================================================
``betatel_reset.E001``  ``check --deploy`` only: the http backend has no token source
``betatel_reset.E002``  ``BACKEND`` cannot be imported
``betatel_reset.E003``  ``TOKEN_PROVIDER`` cannot be imported or called
``betatel_reset.E004``  a ``RATE_LIMIT_*`` value is not a rate like ``"3/15m"``
``betatel_reset.E005``  ``TASK_BACKEND`` is not a configured task backend
``betatel_reset.E006``  ``MESSAGES`` overrides a text that does not exist, or uses
                        placeholders its default does not have
``betatel_reset.E007``  a setting has the wrong type or a value out of range
``betatel_reset.E008``  ``CA_BUNDLE`` is not a readable file (or folder) of certificates
``betatel_reset.E009``  ``CACHE_ALIAS`` is not an alias of ``settings.CACHES``
``betatel_reset.W001``  the static ``TOKEN`` is a JWT that has expired
``betatel_reset.W002``  ``API_URL`` is not https while ``DEBUG`` is off
``betatel_reset.W003``  ``BETATEL_RESET`` has keys the app does not know
``betatel_reset.W004``  ``ADMIN_ACTION`` is on but the user model is not in the default admin
``betatel_reset.W005``  rate limits are on but ``CACHE_ALIAS`` is a dummy cache
``betatel_reset.W006``  the http backend has no token source (E001 under ``--deploy``)
``betatel_reset.W007``  ``DELIVERY = "queued"`` on a task backend that runs tasks
                        at once (immediate): no worker, so nothing is queued
=====================  =====================================================

Every value is checked against its kind in :mod:`betatel_reset.conf`; a bad one
is reported under the id of the check that owns the setting (E002 for
``BACKEND``, E004 for a rate …), else E007. The other checks skip a setting
whose value is already reported, so each mistake is named once.

A missing token is a warning (W006), not an error: ``migrate``,
``collectstatic`` and a site's own test run must work where the token is not
set, and a page without one answers 503 rather than fail. Only
``check --deploy``, run before going live, makes it an error (E001).
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.checks import CheckMessage, Error, Warning, register

from .backends import get_backend
from .conf import DEFAULTS, SETTINGS_NAME, app_settings
from .exceptions import ConfigurationError, InvalidSetting
from .texts import DEFAULTS as TEXTS
from .texts import placeholders
from .tokens import get_provider, jwt_expiry


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = [_value_error(error) for error in app_settings.errors()]
    errors.extend(_check_backend_and_token())
    errors.extend(_check_api_url())
    errors.extend(_check_rate_limit_cache())
    errors.extend(_check_messages())
    unknown = app_settings.unknown_keys
    if unknown:
        errors.append(
            Warning(
                f"{SETTINGS_NAME} has unknown keys: {', '.join(unknown)}.",
                hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
                id="betatel_reset.W003",
            )
        )
    return errors


#: The id a bad value is reported under when a check of its own owns the setting.
VALUE_CHECK_IDS = {
    "BACKEND": "betatel_reset.E002",
    "TOKEN_PROVIDER": "betatel_reset.E003",
    "RATE_LIMIT_EMAIL": "betatel_reset.E004",
    "RATE_LIMIT_IP": "betatel_reset.E004",
    "TASK_BACKEND": "betatel_reset.E005",
    "CA_BUNDLE": "betatel_reset.E008",
    "CACHE_ALIAS": "betatel_reset.E009",
}


def _value_error(error: InvalidSetting) -> CheckMessage:
    """E007, or the setting's own id: the same words a request would raise."""
    check_id = VALUE_CHECK_IDS.get(error.setting, "betatel_reset.E007")
    return Error(str(error), hint=error.hint, id=check_id)


def _check_backend_and_token() -> list[CheckMessage]:
    if not app_settings.usable("BACKEND", "TOKEN", "TOKEN_PROVIDER"):
        return []  # the value is reported above
    try:
        backend = get_backend()
    except ConfigurationError as exc:
        return [Error(str(exc), id="betatel_reset.E002")]
    try:
        provider = get_provider()
    except ConfigurationError as exc:
        return [Error(str(exc), id="betatel_reset.E003")]

    errors: list[CheckMessage] = []
    token = app_settings.TOKEN
    if _credential_missing(backend.requires_token, provider, token):
        errors.append(Warning(_NO_CREDENTIAL, hint=_NO_CREDENTIAL_HINT, id="betatel_reset.W006"))
    if provider is None and token:
        expires = jwt_expiry(token)
        if expires is not None and expires <= datetime.datetime.now(datetime.UTC):
            errors.append(
                Warning(
                    f"{SETTINGS_NAME}['TOKEN'] is a JWT that expired at "
                    f"{expires:%Y-%m-%d %H:%M} UTC; Betatel will reject it.",
                    hint=(
                        "Betatel tokens are short-lived: use a TOKEN_PROVIDER that fetches "
                        "a fresh one, or renew the token."
                    ),
                    id="betatel_reset.W001",
                )
            )
    return errors


_NO_CREDENTIAL = (
    "The http backend has no Betatel API token: the pages will answer 503 and admin "
    "sends will fail until one is set."
)
_NO_CREDENTIAL_HINT = (
    f"Set {SETTINGS_NAME}['TOKEN'] (for example from the BETATEL_API_TOKEN environment "
    f"variable) or {SETTINGS_NAME}['TOKEN_PROVIDER'], or use {SETTINGS_NAME}['BACKEND'] = "
    "'console' in development."
)


def _credential_missing(requires_token: bool, provider: Any, token: str | None) -> bool:
    return requires_token and provider is None and not token


@register(deploy=True)
def check_token_for_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E001, under ``check --deploy`` only: going live without a token is an error."""
    if not app_settings.usable("BACKEND", "TOKEN", "TOKEN_PROVIDER"):
        return []  # reported by check_settings
    try:
        backend, provider = get_backend(), get_provider()
    except ConfigurationError:
        return []  # E002/E003
    if not _credential_missing(backend.requires_token, provider, app_settings.TOKEN):
        return []
    return [Error(_NO_CREDENTIAL, hint=_NO_CREDENTIAL_HINT, id="betatel_reset.E001")]


def _check_api_url() -> list[CheckMessage]:
    if not app_settings.usable("API_URL"):
        return []
    if app_settings.DEBUG or app_settings.API_URL.startswith("https://"):
        return []
    return [
        Warning(
            f"{SETTINGS_NAME}['API_URL'] is {app_settings.API_URL!r}: the token would "
            "travel unencrypted.",
            hint="Use an https:// URL outside development.",
            id="betatel_reset.W002",
        )
    ]


def _check_rate_limit_cache() -> list[CheckMessage]:
    if not app_settings.usable("RATE_LIMIT_EMAIL", "RATE_LIMIT_IP", "CACHE_ALIAS"):
        return []
    limits_on = app_settings.RATE_LIMIT_EMAIL or app_settings.RATE_LIMIT_IP
    if not limits_on or not app_settings.cache_backend.endswith("DummyCache"):
        return []
    return [
        Warning(
            f"The {app_settings.CACHE_ALIAS!r} cache is a DummyCache: rate limits and the "
            "circuit breaker cannot count anything.",
            hint=f"Use a real cache or set {SETTINGS_NAME}['CACHE_ALIAS'] to one.",
            id="betatel_reset.W005",
        )
    ]


def _check_messages() -> list[CheckMessage]:
    setting = f"{SETTINGS_NAME}['MESSAGES']"
    value = app_settings._get("MESSAGES")
    if not isinstance(value, dict):
        return [
            Error(
                f"{setting} must be a dict of texts by key, not {type(value).__name__}.",
                id="betatel_reset.E006",
            )
        ]
    errors: list[CheckMessage] = []
    for key, text in value.items():
        if key not in TEXTS:
            errors.append(
                Error(
                    f"{setting} has an unknown key {key!r}.",
                    hint=f"Known keys: {', '.join(sorted(TEXTS))}.",
                    id="betatel_reset.E006",
                )
            )
            continue
        allowed = placeholders(TEXTS[key])
        try:
            extra = placeholders(text) - allowed
        except (TypeError, ValueError) as exc:
            errors.append(
                Error(f"{setting}[{key!r}] is not a valid text: {exc}.", id="betatel_reset.E006")
            )
            continue
        if extra:
            errors.append(
                Error(
                    f"{setting}[{key!r}] uses placeholders its default does not have: "
                    f"{', '.join(sorted(extra))}.",
                    hint=f"It may use: {', '.join(sorted(allowed)) or 'none'}.",
                    id="betatel_reset.E006",
                )
            )
    return errors


@register()
def check_admin_action(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W004: the resend actions attach to the default admin site's user admin."""
    from django.apps import apps

    if not app_settings.usable("ADMIN_ACTION"):
        return []  # E007
    if not app_settings.ADMIN_ACTION or not apps.is_installed("django.contrib.admin"):
        return []
    from django.contrib import admin
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    if admin.site.is_registered(user_model):
        return []
    return [
        Warning(
            f"{SETTINGS_NAME}['ADMIN_ACTION'] is on, but {user_model._meta.label} is not "
            "registered with the default admin site: the resend actions have nowhere to go.",
            hint=(
                "Register the user model with django.contrib.admin.site, or add "
                "betatel_reset.admin.ResendResetEmailMixin to the user ModelAdmin on your "
                f"own admin site and set {SETTINGS_NAME}['ADMIN_ACTION'] = False."
            ),
            id="betatel_reset.W004",
        )
    ]


@register()
def check_task_backend(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E005: ``TASK_BACKEND`` names a backend of ``settings.TASKS``."""
    if not app_settings.usable("TASK_BACKEND"):
        return []  # reported by check_settings, under E005 too
    try:
        from .tasks import get_task_backend
    except ImportError:  # no Tasks framework: bulk sends run inline
        return []
    except Exception as exc:  # the task could not even be defined on that backend
        return [_task_backend_error(exc)]
    try:
        get_task_backend()
    except Exception as exc:  # the framework's InvalidTaskBackend(Error)
        return [_task_backend_error(exc)]
    return []


def _task_backend_error(exc: Exception) -> CheckMessage:
    return Error(
        f"{SETTINGS_NAME}['TASK_BACKEND'] = {app_settings.TASK_BACKEND!r} is not a usable "
        f"task backend ({exc}).",
        hint="Name an alias of settings.TASKS (default: 'default').",
        id="betatel_reset.E005",
    )


@register()
def check_queued_delivery(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W007: queued delivery needs a backend a worker takes tasks from."""
    if not app_settings.usable("DELIVERY", "TASK_BACKEND") or app_settings.DELIVERY != "queued":
        return []
    try:
        from .delivery import backend_is_immediate

        immediate = backend_is_immediate()
    except Exception:  # no Tasks framework, or no such backend: E005 says so
        return []
    if not immediate:
        return []
    return [
        Warning(
            f"{SETTINGS_NAME}['DELIVERY'] is 'queued', but the task backend "
            f"{app_settings.TASK_BACKEND!r} runs tasks at once, in the request: the pages "
            "still wait for Betatel.",
            hint=(
                "Use a backend with a worker, such as django-tasks-db's DatabaseBackend and "
                f"'manage.py db_worker', or set {SETTINGS_NAME}['DELIVERY'] = 'inline'."
            ),
            id="betatel_reset.W007",
        )
    ]
