"""A clerk's day in a real browser with no network beyond this machine (Playwright + Debian's Chromium; skipped
with a reason when either is missing): the API docs render offline; sign in, refresh, still signed in; verify;
the case record is in History; export it as CSV. History and Profiles, signed in, pass axe-core's WCAG 2 A/AA
rules (no serious or critical finding)."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from test_browser import CHROMIUM, CHROMIUM_ARGS, FAILING_IMPACTS, axe_findings, settle, streamlit_server  # noqa: F401

PASSWORD = "correct horse battery"


def offline(context) -> None:
    """Every request to a host other than this machine fails, as without internet."""
    def route(r):
        host = urlsplit(r.request.url).hostname
        if host in ("127.0.0.1", "localhost") or r.request.url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            r.abort("internetdisconnected")

    context.route("**/*", route)


def register(backend_url: str, username: str) -> str:
    """A new account on the live backend; its token."""
    response = requests.post(f"{backend_url}/api/auth/register/", json={"username": username, "password": PASSWORD},
                             timeout=30)
    assert response.status_code == 201, response.text[:300]
    return response.json()["token"]


def sign_in(page, username: str) -> None:
    """Fill the page's sign-in form and send it (the caller waits for what the page shows next)."""
    page.locator("input[aria-label='Username']:visible").first.fill(username)
    page.locator("input[aria-label='Password']:visible").first.fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def browser_context():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install chromium` (Debian) to run the browser test")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 1600}, accept_downloads=True)
        context.set_default_timeout(90_000)
        offline(context)
        try:
            yield context, sync_api
        finally:
            browser.close()


def test_api_docs_render_offline(backend_url, browser_context):
    context, _ = browser_context
    page = context.new_page()
    page.goto(f"{backend_url}/api/docs/")
    page.locator(".opblock-summary-path", has_text="/api/verify/").first.wait_for()
    assert page.locator(".opblock").count() > 10
    page.goto(f"{backend_url}/api/redoc/")
    # ReDoc renders every operation (the side menu holds them even where it is collapsed)
    page.get_by_text("Verify a questioned signature against one reference").first.wait_for(state="attached")
    assert page.locator("[data-section-id^='operation/']").count() > 10


def test_sign_in_refresh_verify_history_export(backend_url, streamlit_server, browser_context, signature, tmp_path):  # noqa: F811
    pytest.importorskip("axe_playwright_python", reason="axe-playwright-python is not installed (requirements-dev.txt)")
    context, sync_api = browser_context
    username = f"clerk_{uuid.uuid4().hex[:8]}"
    register(backend_url, username)
    page = context.new_page()
    try:
        page.goto(f"{streamlit_server}/History")
        page.get_by_role("heading", name="History").wait_for()
        sign_in(page, username)
        page.get_by_text(f"Signed in as {username}").first.wait_for()

        deadline = time.monotonic() + 30  # the cookie component sets the cookie after the rerun
        while not any(c["name"] == "sigver_session" for c in context.cookies()) and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        cookie = next(c for c in context.cookies() if c["name"] == "sigver_session")
        assert cookie["value"] and cookie["sameSite"] == "Strict"
        assert "token" not in page.url and cookie["value"] not in page.url

        page.reload()  # a refresh: a new Streamlit session
        page.get_by_text(f"Signed in as {username}").first.wait_for()

        page.goto(streamlit_server)  # Verify, still signed in
        page.get_by_role("heading", name="Verify a signature").wait_for()
        inputs = page.locator('input[type="file"]')
        inputs.first.wait_for(state="attached")
        inputs.nth(0).set_input_files({"name": "reference.png", "mimeType": "image/png", "buffer": signature(41)})
        inputs.nth(1).set_input_files(
            {"name": "questioned.png", "mimeType": "image/png", "buffer": signature(41, variant=5)})
        button = page.locator("button", has_text=re.compile(r"^\W*(search)?\W*Verify$"))
        sync_api.expect(button).to_be_enabled(timeout=90_000)
        button.click()
        page.get_by_text(re.compile(r"answered in \d+ ms")).first.wait_for()  # the result is shown

        page.goto(f"{streamlit_server}/History")
        page.get_by_text(f"Signed in as {username}").first.wait_for()
        page.get_by_text("1 record, newest first").wait_for()
        settle(page)
        findings = axe_findings(page, "History, signed in")  # the pages a signed-out run of axe does not see
        page.locator('[data-testid="stSidebarNav"] a', has_text="Profiles").first.click()
        page.get_by_text("No profiles yet").first.wait_for()
        settle(page)
        findings += axe_findings(page, "Profiles, signed in")
        page.locator('[data-testid="stSidebarNav"] a', has_text="History").first.click()
        page.get_by_text("1 record, newest first").wait_for()
        page.get_by_role("button", name=re.compile("Export these records as CSV")).click()
        download_button = page.get_by_role("button", name=re.compile(r"Download the CSV \(1 record\)"))
        with page.expect_download() as info:
            download_button.click()
        csv_text = Path(info.value.path()).read_text()
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        raise
    failing = [f for f in findings if any(f"({impact})" in f.split(": ", 2)[1] for impact in FAILING_IMPACTS)]
    assert not failing, "\n".join(failing)
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("id,created,kind,user")
    assert len(lines) == 2 and f",pair,{username}," in lines[1]


def test_the_profile_selector_counts_the_references_just_added(backend_url, streamlit_server, browser_context,  # noqa: F811
                                                               signature, tmp_path):
    """In the browser, not only in AppTest: the selector's label (name · N references) follows an upload."""
    context, sync_api = browser_context
    username = f"clerk_{uuid.uuid4().hex[:8]}"
    register(backend_url, username)
    page = context.new_page()
    try:
        page.goto(f"{streamlit_server}/Profiles")
        sign_in(page, username)
        page.get_by_text("No profiles yet").first.wait_for()
        settle(page)  # the sign-in's rerun is over: typing now is not lost
        page.get_by_text("New profile").first.click()
        page.locator("input[aria-label='Name of the person']").fill("Dana Ray")
        settle(page)
        page.get_by_role("button", name="Create profile").click()
        selector = page.get_by_role("combobox", name="Profile")  # the selected label is the input's value
        sync_api.expect(selector).to_have_value("Dana Ray · 0 references", timeout=90_000)
        settle(page)
        page.locator('input[type="file"]').first.set_input_files(
            [{"name": f"ref{i}.png", "mimeType": "image/png", "buffer": signature(61, variant=i)} for i in range(2)])
        add = page.get_by_role("button", name=re.compile(r"Add 2 references"))
        sync_api.expect(add).to_be_enabled(timeout=90_000)
        add.click()
        page.get_by_text("2 references added").first.wait_for()
        sync_api.expect(selector).to_have_value("Dana Ray · 2 references", timeout=90_000)
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        raise
