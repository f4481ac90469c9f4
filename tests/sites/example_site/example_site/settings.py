import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-site-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "members",
    "betatel_reset",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "example_site.urls"
AUTH_USER_MODEL = "members.Member"

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

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "site.sqlite3"}
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("EXAMPLE_REDIS_URL", "redis://127.0.0.1:6379/14"),
        "KEY_PREFIX": os.environ.get("EXAMPLE_CACHE_PREFIX", "example-site"),
    }
}

USE_TZ = True
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# From the README's "Add it to your site".
BETATEL_RESET = {
    "API_URL": os.environ["EXAMPLE_BETATEL_API_URL"],
    "TOKEN": os.environ["EXAMPLE_BETATEL_API_TOKEN"],
}
# A local fake Betatel server over plain http is only for this test site.
SILENCED_SYSTEM_CHECKS = ["betatel_reset.W002"]
