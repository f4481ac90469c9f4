"""The pages in a real browser: Debian's Chromium driven by pytest-playwright
against pytest-django's live server, checked with axe-core and the Nu HTML
Checker.

Needs /usr/bin/chromium and ``make browser-deps`` (axe-core, vnu-jar). Without
them the module is skipped with the reason, unless ``BETATEL_REQUIRE_BROWSER=1``
(set by ``.ci/run``), where a missing piece fails the run instead.
``BETATEL_SCREENSHOTS=1`` also rewrites the screenshots under docs/screenshots/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
VNU = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
SCREENSHOTS = ROOT / "docs" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def _missing() -> list[str]:
    missing = []
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if not AXE.exists():
        missing.append(f"{AXE.relative_to(ROOT)} (make browser-deps)")
    if not VNU.exists():
        missing.append(f"{VNU.relative_to(ROOT)} (make browser-deps)")
    if shutil.which("java") is None:
        missing.append("java, to run the Nu HTML Checker (apt-get install default-jre-headless)")
    return missing


if _missing():
    reason = "browser tests need " + ", ".join(_missing())
    if os.environ.get("BETATEL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"BETATEL_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import Page, Response, expect  # noqa: E402

from betatel_reset.backends import locmem  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    return {
        "executable_path": str(CHROMIUM),
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(autouse=True, scope="session")
def _allow_sync_orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API runs an event loop in the test thread; Django's ORM
    (test database setup and teardown, until the session ends) would otherwise
    refuse to run there."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(autouse=True)
def _offline(settings: Any) -> None:
    """Resends land in the in-memory outbox; nothing leaves the machine."""
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "BACKEND": "locmem"}


@pytest.fixture(scope="session")
def base_url() -> None:
    """No base URL: the tests use the live server's absolute URLs. (This also
    replaces pytest-playwright's fallback fixture, which pytest 9 deprecates.)"""
    return None


@pytest.fixture
def server_url(live_server: Any) -> str:
    return str(live_server.url)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate("async () => await axe.run()")
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["html"] for n in v["nodes"]]}
        for v in result["violations"]
    ]


def vnu_errors(documents: dict[str, str]) -> list[str]:
    """The Nu HTML Checker's errors for each named HTML document."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, html in documents.items():
            path = Path(tmp) / f"{name}.html"
            path.write_text(html, encoding="utf-8")
            paths.append(str(path))
        run = subprocess.run(
            ["java", "-jar", str(VNU), "--errors-only", "--stdout", "--format", "json", *paths],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    try:
        messages = json.loads(run.stdout)["messages"]
    except (ValueError, KeyError):
        pytest.fail(f"the Nu HTML Checker did not run: {run.stdout}{run.stderr}")
    return [
        f"{Path(m.get('url', '')).name}:{m.get('lastLine')}: {m['type']}: {m['message']}"
        for m in messages
    ]


def is_page(response: Response) -> bool:
    """A document the browser shows (not a redirect on the way to one)."""
    return response.request.resource_type == "document" and not 300 <= response.status < 400


def test_expired_link_prefills_sends_and_validates(page: Page, server_url: str) -> None:
    sources: dict[str, str] = {}  # the HTML as served, for the Nu HTML Checker
    violations: dict[str, list[dict[str, Any]]] = {}
    submit = page.get_by_role("button", name="Send a new reset link")

    # A link from the site's "expired" handling, address included.
    response = page.goto(f"{server_url}/reset-password/expired/?email=Ada%40Example.COM")
    assert response is not None
    assert response.url == page.url == f"{server_url}/reset-password/expired/"
    expect(page.get_by_role("heading", level=1)).to_have_text("This reset link has expired")
    field = page.get_by_label("Email address")
    expect(field).to_have_value("Ada@example.com")
    # The stylesheet was served and applied.
    assert page.evaluate(
        "() => getComputedStyle(document.querySelector('.betatel-reset')).maxWidth"
    ) not in ("", "none")
    sources["expired"] = response.text()
    violations["expired"] = axe_violations(page)

    with page.expect_response(is_page) as sent:
        submit.click()
    expect(page.get_by_role("status")).to_contain_text(
        "If an account exists for Ada@example.com, a new reset link will arrive there"
    )
    assert page.url == f"{server_url}/reset-password/expired/"
    assert [r.email for r in locmem.outbox] == ["Ada@example.com"]
    sources["expired-sent"] = sent.value.text()
    violations["expired-sent"] = axe_violations(page)

    # An invalid address: the field error, tied to the field, nothing sent.
    response = page.goto(f"{server_url}/reset-password/resend/")
    assert response is not None
    expect(page.get_by_role("heading", level=1)).to_have_text("Didn't get the email?")
    sources["resend"] = response.text()
    violations["resend"] = axe_violations(page)
    field = page.get_by_label("Email address")
    field.fill("not-an-email")
    with page.expect_response(is_page) as refused:
        submit.click()
    assert refused.value.status == 400
    expect(page.locator("#id_email_error")).to_have_text(
        "Enter a valid email address, like name@example.com."
    )
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description(
        "The address you use to sign in. Enter a valid email address, like name@example.com."
    )
    expect(field).to_have_value("not-an-email")
    assert len(locmem.outbox) == 1
    sources["resend-invalid"] = refused.value.text()
    violations["resend-invalid"] = axe_violations(page)

    assert {name: found for name, found in violations.items() if found} == {}
    assert vnu_errors(sources) == []


def test_app_layout_on_its_own_is_valid_and_accessible(
    page: Page, server_url: str, settings: Any
) -> None:
    # Without the demo's templates directory: the app's own base.html, and the
    # pages' own <main> (PAGE_MAIN's default; the test settings turn it off).
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": []}]
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "PAGE_MAIN": True}
    sources: dict[str, str] = {}
    violations: dict[str, list[dict[str, Any]]] = {}
    for name in ("resend", "expired"):
        response = page.goto(f"{server_url}/reset-password/{name}/")
        assert response is not None
        sources[f"standalone-{name}"] = response.text()
        assert "Betatel reset demo" not in sources[f"standalone-{name}"]
        violations[name] = axe_violations(page)

    assert {name: found for name, found in violations.items() if found} == {}
    assert vnu_errors(sources) == []


def test_in_a_real_sites_layout_the_resend_page_is_valid_and_accessible(
    page: Page, server_url: str, settings: Any
) -> None:
    """tests/sites/example_site's Bootstrap-like base (messages printed by the
    base, css/javascript blocks, no <main>) with the README's recipe."""
    settings.TEMPLATES = [
        {
            **settings.TEMPLATES[0],
            "DIRS": [ROOT / "tests" / "sites" / "example_site" / "templates"],
        }
    ]
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, "PAGE_MAIN": True, "PAGE_MESSAGES": False}

    response = page.goto(f"{server_url}/reset-password/resend/")
    assert response is not None
    expect(page.locator("#example-site-layout")).to_be_visible()
    expect(page.get_by_role("main")).to_have_count(1)
    expect(page.get_by_role("main").get_by_role("heading", level=1)).to_have_text(
        "Didn't get the email?"
    )
    # The stylesheet linked from the body was served and applied.
    assert page.evaluate(
        "() => getComputedStyle(document.querySelector('.betatel-reset')).maxWidth"
    ) not in ("", "none")
    sources = {"site-resend": response.text()}
    serious = {"site-resend": serious_violations(page)}

    page.get_by_label("Email address").fill("ada@example.com")
    with page.expect_response(is_page) as sent:
        page.get_by_role("button", name="Send a new reset link").click()
    expect(page.get_by_text("a new reset link will arrive there")).to_have_count(1)
    sources["site-resend-sent"] = sent.value.text()
    serious["site-resend-sent"] = serious_violations(page)

    assert {name: found for name, found in serious.items() if found} == {}
    assert vnu_errors(sources) == []


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe's serious and critical findings (a site's own base may have lesser ones)."""
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate("async () => await axe.run()")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_pages_work_without_javascript(browser: Any, server_url: str) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{server_url}/reset-password/resend/")
        page.get_by_label("Email address").fill("grace@example.com")
        page.get_by_role("button", name="Send a new reset link").click()
        expect(page.get_by_role("status")).to_contain_text("If an account exists")
        assert [r.email for r in locmem.outbox] == ["grace@example.com"]
    finally:
        context.close()


def test_double_click_sends_once(page: Page, server_url: str) -> None:
    page.goto(f"{server_url}/reset-password/resend/")
    page.get_by_label("Email address").fill("ada@example.com")
    page.get_by_role("button", name="Send a new reset link").dblclick()
    expect(page.get_by_role("status")).to_contain_text("If an account exists")
    assert [r.email for r in locmem.outbox] == ["ada@example.com"]


@pytest.mark.skipif(
    os.environ.get("BETATEL_SCREENSHOTS") != "1",
    reason="set BETATEL_SCREENSHOTS=1 to rewrite docs/screenshots/",
)
def test_screenshots(browser: Any, server_url: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for device, viewport in VIEWPORTS.items():
        context = browser.new_context(
            viewport=viewport, device_scale_factor=1, reduced_motion="reduce"
        )
        try:
            page = context.new_page()
            page.goto(f"{server_url}/reset-password/resend/")
            page.screenshot(path=SCREENSHOTS / f"resend-{device}.png", full_page=True)
            page.goto(f"{server_url}/reset-password/expired/?email=ada%40example.com")
            page.screenshot(path=SCREENSHOTS / f"expired-{device}.png", full_page=True)
        finally:
            context.close()


def test_the_bulk_sends_page_shows_progress_and_its_actions_work(
    page: Page, server_url: str
) -> None:
    """The admin's batch list: the progress bar is a ``progressbar`` named by
    its summary (axe-core finds nothing wrong with it), and pausing and
    resuming from the action menu work."""
    from django.contrib.auth import get_user_model

    from betatel_reset import batches
    from betatel_reset.choices import AddressState, Source
    from betatel_reset.models import BatchAddress, ResendBatch

    get_user_model().objects.create_superuser("root", "root@staff.example", "pw")
    batch = batches.create_batch([f"user{n}@example.com" for n in range(4)], source=Source.COMMAND)
    BatchAddress.objects.filter(email="user0@example.com").update(
        state=AddressState.DONE, outcome="sent"
    )
    page.goto(f"{server_url}/admin/login/?next=/admin/betatel_reset/resendbatch/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()

    bar = page.get_by_role("progressbar", name="1 sent, 0 failed, 0 in doubt, 3 remaining.")
    expect(bar).to_be_visible()
    expect(bar).to_have_attribute("value", "1")
    expect(bar).to_have_attribute("max", "4")
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        "async () => (await axe.run('.betatel-batch-progress')).violations.map(v => v.id)"
    )
    assert found == []

    def run_action(label: str) -> None:
        page.locator(f"input[name='_selected_action'][value='{batch.pk}']").check()
        page.get_by_role("combobox", name="Action").select_option(label=label)
        # Its label is "Go" on Django 5.2 and "Run" from 6.0; its name is "index".
        page.locator("button[name=index]").first.click()

    run_action("Pause selected bulk sends")
    expect(page.locator(".messagelist")).to_contain_text("Paused 1 bulk send")
    assert ResendBatch.objects.get().state == "paused"

    run_action("Resume selected bulk sends")
    expect(page.locator(".messagelist")).to_contain_text(
        f"Bulk send #{batch.pk} resumed: 4 sent, 0 failed, 0 in doubt, 0 remaining."
    )
    expect(
        page.get_by_role("progressbar", name="4 sent, 0 failed, 0 in doubt, 0 remaining.")
    ).to_be_visible()
    assert sorted(r.email for r in locmem.outbox) == [f"user{n}@example.com" for n in (1, 2, 3)]
