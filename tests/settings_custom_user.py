"""The test settings with a custom user model (``tests.custom_user.Member``).

``betatel_reset`` comes *first* in ``INSTALLED_APPS`` here, before the admin
and the app that registers the user admin, so the actions attach on the first
request; ``tests.settings`` covers the other order. Used by
``tests/custom_user/scenarios.py``, run in its own process from test_admin.py.
"""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [
    "betatel_reset",
    *(app for app in INSTALLED_APPS if app != "betatel_reset"),
    "tests.custom_user",
]
AUTH_USER_MODEL = "custom_user.Member"
ROOT_URLCONF = "tests.custom_user.urls"
