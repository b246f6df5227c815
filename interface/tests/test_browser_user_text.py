"""Issue 29's payload in a real browser (Playwright + Debian's Chromium; skipped with a reason when either is
missing): a profile named with HTML and a fake table row shows as those characters on Profiles and History, and the
browser builds no element from it (no `#pwn`, no request to the address in it)."""

from __future__ import annotations

import re
import time

from test_browser_clerk import browser_context, register, sign_in  # noqa: F401
from test_browser import streamlit_server  # noqa: F401

PAYLOAD = '<b id=pwn style="color:red">INJECTED</b>\n| Checked by | someone_else |<img src="http://127.0.0.1:9/p.png">'


def test_a_profile_named_with_html_stays_text_in_the_browser(backend_url, streamlit_server, browser_context,  # noqa: F811
                                                            signature, unique_username, tmp_path):
    import api_client as api

    context, _ = browser_context
    token = register(backend_url, unique_username)
    client = api.SigverClient(backend_url, token=token)
    profile = client.create_profile(PAYLOAD)
    client.add_references(profile["id"], [("r1.png", signature(61)), ("r2.png", signature(61, variant=1))])
    client.verify_profile(profile["id"], ("q.png", signature(61, variant=2)))

    fetched: list[str] = []
    page = context.new_page()
    page.on("request", lambda r: fetched.append(r.url))
    try:
        page.goto(f"{streamlit_server}/Profiles")
        sign_in(page, unique_username)
        page.get_by_text(f"Signed in as {unique_username}").first.wait_for()
        page.get_by_text("2 genuine reference signatures on file.").wait_for()
        deadline = time.monotonic() + 30  # the profile selector renders after the references
        while "INJECTED" not in page.content() and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        profiles_html = page.content()  # the name is on the page (escaped in the DOM) ...
        profiles_pwn = page.locator("#pwn").count()  # ... and nothing was built from it
        profiles_row = page.locator("td", has_text=re.compile(r"^\s*someone_else\s*$")).count()
        page.locator('[data-testid="stSidebarNav"] a', has_text="History").first.click()
        page.get_by_text("1 record, newest first").wait_for()
        page.wait_for_timeout(1000)
        history_pwn = page.locator("#pwn").count()
        history_row = page.locator("td", has_text=re.compile(r"^\s*someone_else\s*$")).count()
        history_cells = page.locator("td").all_text_contents()
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        raise
    assert "&lt;b id=pwn" in profiles_html and "INJECTED" in profiles_html
    assert profiles_pwn == 0 and history_pwn == 0
    assert profiles_row == 0 and history_row == 0, history_cells  # no cell of its own: no row was added
    assert not any("127.0.0.1:9/" in url for url in fetched), [u for u in fetched if ":9/" in u]
