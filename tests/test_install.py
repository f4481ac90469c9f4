"""Build the package, install the wheel into a fresh virtualenv beside an
existing site (tests/sites/example_site), follow the README's steps, and use it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
import venv
import zipfile
from pathlib import Path

import pytest

from betatel_reset.testing import FakeBetatelServer

from .support.real_services import ROOT, require_services

pytestmark = pytest.mark.services

SHIPPED = [
    "betatel_reset/py.typed",
    "betatel_reset/migrations/0001_initial.py",
    "betatel_reset/templates/betatel_reset/base.html",
    "betatel_reset/templates/betatel_reset/resend.html",
    "betatel_reset/templates/betatel_reset/expired.html",
    "betatel_reset/static/betatel_reset/betatel_reset.css",
    "betatel_reset/locale/fr/LC_MESSAGES/django.po",
    "betatel_reset/locale/fr/LC_MESSAGES/django.mo",
]


def run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], check=True, capture_output=True, text=True, timeout=600, **kwargs
    )  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    run(sys.executable, "-m", "twine", "check", "--strict", *sorted(out.iterdir()))
    return out


def test_wheel_and_sdist_carry_everything(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    wheel_names = set(zipfile.ZipFile(wheel).namelist())
    with tarfile.open(sdist) as archive:
        sdist_names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for name in SHIPPED:
        assert name in wheel_names, name
        assert name in sdist_names, name
    assert not [n for n in wheel_names if n.startswith(("tests/", "project/", "bench/"))]
    metadata = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in wheel_names if n.endswith(".dist-info/METADATA")))
        .decode()
    )
    for classifier in [
        "Framework :: Django :: 5.2",
        "Framework :: Django :: 6.0",
        "Framework :: Django :: 6.1",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.13",
    ]:
        assert f"Classifier: {classifier}" in metadata
    requires = sorted(
        line.split(":", 1)[1].strip()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    )
    assert requires == ["Django>=5.2", "idna>=3", "requests>=2.31"]


def test_installs_into_an_existing_site(
    dist: Path, tmp_path: Path, fake_betatel: FakeBetatelServer
) -> None:
    """The README's "Add it to your site" steps, in a site like a real one:
    tests/sites/example_site (see its settings' docstring)."""
    require_services()
    (wheel,) = dist.glob("*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # The site's own dependencies beside the wheel: Redis and whitenoise.
    run(
        python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        wheel, "redis", "whitenoise",
    )  # fmt: skip

    site = tmp_path / "site"
    # Its database and static files are made below, never copied from a local run.
    shutil.copytree(
        ROOT / "tests" / "sites" / "example_site",
        site,
        ignore=shutil.ignore_patterns("site.sqlite3", "staticfiles", "__pycache__"),
    )
    prefix = f"example-{uuid.uuid4().hex[:8]}"
    build_env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "DJANGO_SETTINGS_MODULE", "BETATEL_API_TOKEN"}
    }
    build_env.update(EXAMPLE_BETATEL_API_URL=fake_betatel.url, EXAMPLE_CACHE_PREFIX=prefix)
    try:
        # No token: migrate, check, collectstatic and the site's own tests run.
        run(python, "manage.py", "migrate", "--no-input", cwd=site, env=build_env)
        checks = run(python, "manage.py", "check", cwd=site, env=build_env)
        assert "betatel_reset.W006" in checks.stderr + checks.stdout
        run(python, "manage.py", "collectstatic", "--no-input", cwd=site, env=build_env)
        own_tests = run(python, "manage.py", "test", "members", cwd=site, env=build_env)
        assert "OK" in own_tests.stderr
        # ... and a release without one is stopped by check --deploy.
        deploy = subprocess.run(
            [python, "manage.py", "check", "--deploy", "--fail-level", "ERROR"],
            cwd=site, env=build_env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert deploy.returncode != 0
        assert "betatel_reset.E001" in deploy.stderr

        # At run time the environment has the token.
        run_env = {**build_env, "BETATEL_API_TOKEN": fake_betatel.token or ""}
        checks = run(
            python, "manage.py", "check", "--fail-level", "WARNING", cwd=site, env=run_env
        )
        assert "no issues" in checks.stdout
        report = json.loads(run(python, "smoke.py", cwd=site, env=run_env).stdout)
    finally:
        import redis

        client = redis.Redis(host="127.0.0.1", port=6379, db=14)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()

    # The app came from the wheel, not from this checkout.
    assert str(env_dir) in report["app_file"]
    # The pages sit in the site's layout, its title pattern kept, with the
    # app's stylesheet (a manifest-hashed name, served by whitenoise) and one <main>.
    for page in ("resend", "expired"):
        assert report[f"{page}_status"] == 200
        found = report[page]
        assert found["in_layout"], found
        assert found["site_css"], found
        assert found["title"].endswith(" · Example Members"), found
        assert found["mains"] == 1, found
        assert found["stylesheet"], found
        assert found["stylesheet"] != "/static/betatel_reset/betatel_reset.css"  # hashed
    assert report["resend"]["title"] == "Didn&#x27;t get the email? · Example Members"
    assert report["stylesheet_status"] == 200
    # A POST: the message once, printed by the site's base.
    assert report["posted_status"] == 200
    assert report["posted_message_count"] == 1
    # The admin action and the change-page button on the site's own user model.
    assert report["changelist_status"] == 200
    assert report["action_offered"] is True
    assert report["confirm_status"] == 200
    assert report["confirm_lists_address"] is True
    assert report["sent_status"] == 200
    assert any("1 sent" in message for message in report["admin_messages"]), report
    assert report["change_page_status"] == 200
    assert report["button"] is True
    assert report["button_landed_on"].endswith("/change/")
    assert any("ada@example.com" in m for m in report["button_messages"]), report
    assert [r.json for r in fake_betatel.requests] == [{"email": "ada@example.com"}] * 3
    assert all(r.bearer == fake_betatel.token for r in fake_betatel.requests)
