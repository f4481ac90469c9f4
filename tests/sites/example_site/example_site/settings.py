"""An existing production-style site (a project template's layout): an
email-as-username user model with its own UserAdmin, a Bootstrap-like base
template, LoginRequiredMiddleware, whitenoise with manifest static files,
Redis, and no BETATEL_API_TOKEN in the environment at build time."""

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
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "members",
    "betatel_reset",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_site.urls"
AUTH_USER_MODEL = "members.Member"
LOGIN_URL = "admin:login"

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
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# From the README's "Add it to your site", step 4, and its "Templates" recipe
# for a base that prints messages itself.
BETATEL_RESET = {
    "TOKEN": os.environ.get("BETATEL_API_TOKEN"),  # or "TOKEN_PROVIDER": "myapp.betatel.get_token"
    "PAGE_MESSAGES": False,  # base.html prints {{ messages }} itself
}
# Only for this test site: a local fake Betatel over plain http.
if os.environ.get("EXAMPLE_BETATEL_API_URL"):
    BETATEL_RESET["API_URL"] = os.environ["EXAMPLE_BETATEL_API_URL"]
    SILENCED_SYSTEM_CHECKS = ["betatel_reset.W002"]
