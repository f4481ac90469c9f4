"""The supported version matrix: ``nox`` runs the suite once per combination.

Every Django release line still maintained upstream: 5.2 LTS on Python
3.11-3.13, 6.0 and 6.1 on Python 3.12-3.13, e.g.
``nox -s "tests-3.13(django='6.1')"``. Interpreters are found on ``PATH`` as
``python3.11``, ``python3.12`` and ``python3.13``.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


@nox.session(python=["3.11", "3.12", "3.13"])
@nox.parametrize("django", ["5.2", "6.0", "6.1"])
def tests(session: nox.Session, django: str) -> None:
    """The test suite on one Python and Django version."""
    if django != "5.2" and session.python == "3.11":
        session.skip(f"Django {django} needs Python 3.12 or newer")
    # On Django 5.2 background tasks come from the django-tasks backport.
    extra = ["django-tasks-db[compat]>=0.13"] if django == "5.2" else []
    session.install("-e", ".[dev]", f"django~={django}.0", *extra)
    session.run("python", "-m", "django", "--version")
    session.run("python", "-m", "pytest", *session.posargs)
