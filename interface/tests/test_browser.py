"""End to end in a real browser: `streamlit run interface/app.py` against the test backend, driven by
Playwright with Debian's Chromium (no browser is downloaded). Skipped when either is missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from fake_backend import free_port

INTERFACE_DIR = Path(__file__).resolve().parents[1]

CHROMIUM = os.environ.get("SIGVER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]


@pytest.fixture
def streamlit_server(backend_url, tmp_path):
    port = free_port()
    env = {**os.environ, "SIGVER_API_URL": backend_url, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(INTERFACE_DIR / "app.py"),
         "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=INTERFACE_DIR.parent,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited early:\n{(tmp_path / 'streamlit.log').read_text()}")
            try:
                if requests.get(f"{url}/_stcore/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{(tmp_path / 'streamlit.log').read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_verify_in_a_browser(streamlit_server, signature, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install chromium` (Debian) to run the browser test")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.set_default_timeout(60_000)
            page.goto(streamlit_server)
            page.get_by_role("heading", name="Verify a signature").wait_for()
            inputs = page.locator('input[type="file"]')
            inputs.first.wait_for(state="attached")
            inputs.nth(0).set_input_files(
                {"name": "reference.png", "mimeType": "image/png", "buffer": signature(41)})
            inputs.nth(1).set_input_files(
                {"name": "questioned.png", "mimeType": "image/png", "buffer": signature(41, variant=5)})
            button = page.get_by_role("button", name="Verify", exact=False).filter(has_text="Verify").first
            page.wait_for_function(
                "() => [...document.querySelectorAll('button')].some(b => b.innerText.includes('Verify') && !b.disabled)"
            )
            button.click()
            verdict = page.get_by_text(re.compile(r"^[✔✘] (GENUINE|FORGED)$")).first
            verdict.wait_for()
            text = verdict.inner_text()
            page.get_by_text("As the model sees them").wait_for()
            page.wait_for_timeout(800)  # let the images finish painting
            shot = tmp_path / "verify.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    assert "GENUINE" in text  # the fake backend calls two samples of one drawn "writer" genuine
    assert shot.stat().st_size > 10_000
    out_dir = os.environ.get("SIGVER_SCREENSHOT_DIR")
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(out_dir) / "verify.png")
