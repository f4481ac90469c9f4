#!/usr/bin/env python
"""An existing Django site that installs django-betatel-reset from its wheel.

It has its own user model (the address lives in ``contact_email``), its own
registered ``UserAdmin``, its own base template and a Redis cache: what the
README's "Add it to your site" steps must cope with.
"""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
