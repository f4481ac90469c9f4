"""The test settings with a custom user model (``tests.sites.custom_user.Member``).

``betatel_reset`` comes *first* in ``INSTALLED_APPS`` here, before the admin
and the app that registers the user admin, so the actions attach on the first
request; ``tests.settings`` covers the other order. Used by
``tests/support/custom_user_scenarios.py``, run in its own process from test_admin.py.
"""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [
    "betatel_reset",
    *(app for app in INSTALLED_APPS if app != "betatel_reset"),
    "tests.sites.custom_user",
]
AUTH_USER_MODEL = "custom_user.Member"
ROOT_URLCONF = "tests.sites.custom_user.urls"
