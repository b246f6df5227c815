"""End to end in a real browser: `streamlit run interface/app.py` against the live test backend (Django,
test model, real HTTP), driven by Playwright with Debian's Chromium (no browser is downloaded; skipped
with a reason when /usr/bin/chromium or the playwright package is missing). After a verification every page is
checked by axe-core's WCAG 2 A/AA rules: a serious or critical finding fails the test.

The screenshot lands in the test's tmp folder; `SIGVER_SCREENSHOT_DIR=docs/screenshots` also writes a
small (palette PNG) copy there, which is how docs/screenshots/verify.png is refreshed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from fake_backend import free_port
from made_up_pages import signed_letter_png

INTERFACE_DIR = Path(__file__).resolve().parents[1]

CHROMIUM = os.environ.get("SIGVER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]


DECISION = re.compile(r"^[✔✘?] (GENUINE|INCONCLUSIVE|FORGED)$")

# axe-core (bundled by the axe-playwright-python package) with the WCAG 2.0/2.1 A and AA rules; a serious or
# critical finding fails the test (a moderate or minor one is printed, not failed)
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
               "resultTypes": ["violations"]}
FAILING_IMPACTS = ("serious", "critical")
# every page of the sidebar, reached by clicking its link (the same session: the verification stays), and what
# shows that it has rendered
PAGES = [("Verify", "Verify a signature"), ("Explain", "Explain a decision"), ("Profiles", "Signature profiles"),
         ("Datasets", "Datasets"), ("Model", "The model"), ("History", "History")]


def axe_findings(page, name: str) -> list[str]:
    """The page's WCAG 2 A/AA violations as one line each: `page: rule (impact): help, N elements, e.g. target`."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page, options=AXE_OPTIONS).response["violations"]
    lines = []
    for v in violations:
        node = v["nodes"][0]
        detail = (node.get("any") or node.get("all") or node.get("none") or [{}])[0].get("message", "")
        lines.append(f"{name}: {v['id']} ({v['impact']}): {v['help']}; {len(v['nodes'])} element(s), e.g. "
                     f"{node['target']} {node.get('html', '')[:160]!r} {detail}")
    return lines


def main_width(page) -> float:
    return page.locator('[data-testid="stMainBlockContainer"]').bounding_box()["width"]


def sidebar_nav(page) -> list[str]:
    """The sidebar's navigation entries as shown (their labels, without the icons' ligature names)."""
    links = page.locator('[data-testid="stSidebarNavLink"]')
    links.first.wait_for()
    return [text.split("\n")[-1].strip() for text in links.all_inner_texts()]


def settle(page) -> None:
    """Wait until Streamlit has finished the script run an action started: a click during a rerun can be lost, and a
    button enabled by the previous run is not yet the button for the new upload. The app's root carries the run state
    (`data-test-script-state`); a run may take a moment to start, so a short wait for "running" comes first."""
    app = '[data-testid="stApp"][data-test-script-state="{}"]'
    try:
        page.locator(app.format("running")).wait_for(state="attached", timeout=1_500)
    except Exception:  # the run was over before we looked, or the action started none
        pass
    page.locator(app.format("notRunning")).wait_for(state="attached", timeout=90_000)


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


def save_small_png(src: Path, dst: Path) -> None:
    """A palette PNG copy: the page is flat colours and text, 256 colours keep it sharp at a third of the size."""
    from PIL import Image

    dst.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as img:
        img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)


def test_verify_in_a_browser(streamlit_server, signature, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install chromium` (Debian) to run the browser test")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
    pytest.importorskip("axe_playwright_python", reason="axe-playwright-python is not installed (requirements-dev.txt)")

    shot = tmp_path / "verify.png"
    findings: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1800})
        page.set_default_timeout(90_000)
        try:
            page.goto(streamlit_server)
            page.get_by_role("heading", name="Verify a signature").wait_for()
            page.get_by_text("Online", exact=True).wait_for()  # sidebar: the backend answers
            inputs = page.locator('input[type="file"]')
            inputs.first.wait_for(state="attached")
            inputs.nth(0).set_input_files(
                {"name": "reference.png", "mimeType": "image/png", "buffer": signature(41)})
            page.get_by_text("reference.png").first.wait_for()  # uploaded: the widget names the file
            settle(page)
            inputs.nth(1).set_input_files(
                {"name": "questioned.png", "mimeType": "image/png", "buffer": signature(41, variant=5)})
            page.get_by_text("questioned.png").first.wait_for()
            settle(page)
            button = page.locator("button", has_text=re.compile(r"^\W*(search)?\W*Verify$"))
            sync_api.expect(button).to_be_enabled(timeout=90_000)  # after both uploads reran the script
            button.click()
            decision_text = page.get_by_text(DECISION)
            verdict = decision_text.first
            verdict.wait_for()
            text = verdict.inner_text()
            # the answer is in view without scrolling on a laptop screen (800 px high)
            box = verdict.bounding_box()
            decision_bottom = box["y"] + box["height"] + page.evaluate("window.scrollY")
            page.get_by_text("As the model sees them").wait_for()
            scale = page.get_by_text(re.compile(r"^Score: ")).first.inner_text()
            model = page.get_by_text(re.compile(r"siamese_resnet18@")).first.inner_text()
            page.wait_for_timeout(800)  # let the images finish painting
            page.screenshot(path=str(shot), full_page=True)
            home_width = main_width(page)
            home_nav = sidebar_nav(page)

            # every page after the verification, in the same session, checked by axe
            for name, heading in PAGES:
                if name != "Verify":
                    page.locator('[data-testid="stSidebarNav"] a', has_text=name).first.click()
                    page.get_by_role("heading", name=heading).first.wait_for()
                    settle(page)
                    page.wait_for_timeout(800)  # images and plots painted
                findings += axe_findings(page, name)
            page.locator('[data-testid="stSidebarNav"] a', has_text="Verify").first.click()
            page.get_by_role("heading", name="Verify a signature").wait_for()
            settle(page)
            sync_api.expect(decision_text.first).to_be_visible()  # the answer is still there

            # a signed letter: refused with the located signature as the suggested crop, which one click takes as
            # the crop box (drawn by the crop step), then verified
            inputs.nth(1).set_input_files({"name": "page.png", "mimeType": "image/png", "buffer": signed_letter_png()})
            # the rerun with the new file drops the answer about the old one: only then is the button for page.png
            sync_api.expect(decision_text).to_have_count(0, timeout=90_000)
            settle(page)
            sync_api.expect(button).to_be_enabled(timeout=90_000)
            button.click()
            page.get_by_text(re.compile("(does not look like|looks like a page, not) a signature crop")).first.wait_for()
            settle(page)
            page.locator("button", has_text="Use the suggested crop").first.click()
            page.get_by_text(re.compile("The box starts on the crop the server suggested")).first.wait_for()
            settle(page)
            sync_api.expect(button).to_be_enabled(timeout=90_000)
            button.click()
            cropped = decision_text.first
            cropped.wait_for()
            cropped_text = cropped.inner_text()

            # a deep link opens a page in the home page's layout
            deep = browser.new_page(viewport={"width": 1280, "height": 1800})
            deep.goto(f"{streamlit_server}/Model")
            deep.get_by_role("heading", name="The model").first.wait_for()
            deep_width = main_width(deep)
            deep_nav = sidebar_nav(deep)
            deep.close()
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()

    # the live backend's test model puts two samples of one drawn "writer" well below its threshold
    assert "GENUINE" in text
    assert "in the GENUINE zone" in scale
    assert decision_bottom < 800, decision_bottom
    assert cropped_text.split()[-1] in {"GENUINE", "INCONCLUSIVE", "FORGED"}
    assert "siamese_resnet18@" in model
    assert shot.stat().st_size > 10_000
    assert deep_width == pytest.approx(home_width, abs=2), (deep_width, home_width)
    # the same navigation too (a `pages/` folder made Streamlit list its own, "app" first, on a fresh deep link)
    assert deep_nav == home_nav and "app" not in deep_nav, (deep_nav, home_nav)
    print("\n".join(findings))  # with -s: every finding, the moderate and minor ones too
    failing = [f for f in findings if any(f"({impact})" in f.split(": ", 2)[1] for impact in FAILING_IMPACTS)]
    assert not failing, "\n".join(failing)
    out_dir = os.environ.get("SIGVER_SCREENSHOT_DIR")
    if out_dir:
        save_small_png(shot, Path(out_dir) / "verify.png")
