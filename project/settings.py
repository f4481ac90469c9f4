"""Settings for the demo site, read from the environment (12-factor).

Copy ``.env.example`` to ``.env`` to change anything; with no ``.env`` the demo
runs offline on SQLite with the console backend.
"""

from importlib.util import find_spec
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str(
    "SECRET_KEY",
    default="django-insecure-demo-only-key-never-use-in-production"
    if DEBUG
    else environ.Env.NOTSET,
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "betatel_reset",
    # Background sending (README: "Background sending"). Django 6.x has the
    # Tasks framework built in; on 5.2 it is the django-tasks backport.
    *([] if find_spec("django.tasks") else ["django_tasks"]),
    "django_tasks_db",
]
# TASKS_BACKEND=database queues bulk admin sends (and, with BETATEL_DELIVERY=queued,
# the public pages' resends) for `manage.py db_worker`;
# the default, immediate, sends them while the admin waits.
TASKS = {
    "default": {
        "BACKEND": {
            "immediate": ("django.tasks" if find_spec("django.tasks") else "django_tasks")
            + ".backends.immediate.ImmediateBackend",
            "database": "django_tasks_db.DatabaseBackend",
        }[env.str("TASKS_BACKEND", default="immediate")]
    }
}

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "betatel_reset.middleware.FormCharsetMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "admin:login"

BETATEL_API_TOKEN = env.str("BETATEL_API_TOKEN", default="")
BETATEL_RESET = {
    "API_URL": env.str("BETATEL_API_URL", default="https://api.betatel.com"),
    "TOKEN": BETATEL_API_TOKEN or None,
    "BACKEND": env.str("BETATEL_BACKEND", default="")
    or ("http" if BETATEL_API_TOKEN else "console"),
    # templates/base.html wraps every page's content in its own <main>.
    "PAGE_MAIN": False,
    # "queued" sends the public pages' resends from `manage.py db_worker`
    # (with TASKS_BACKEND=database); "inline" waits for Betatel in the request.
    "DELIVERY": env.str("BETATEL_DELIVERY", default="inline"),
}
del BETATEL_API_TOKEN

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "betatel_reset": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")}
    },
}

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
