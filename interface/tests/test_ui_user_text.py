"""Text a user typed is shown as text everywhere (issue 29, finding 1): a profile named with HTML and a fake table row
renders as those characters on the Profiles and History pages, for the clerk and for the staff reading the record,
never as HTML, formatting or a new row. `ui.md_text` is checked against a real CommonMark + GFM-table renderer; the
pages against the real test backend (AppTest)."""

from __future__ import annotations

import sqlite3

import pytest
import requests

PAYLOAD = '<b id=pwn style="color:red">INJECTED</b>\n| Checked by | someone_else |'
ONE_LINE = " ".join(PAYLOAD.split())  # markdown text is one line: a line break could start a row or a heading
PNG = "image/png"


def run(target):
    at = target.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rendered(markdown: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


@pytest.mark.parametrize("text", [
    PAYLOAD, "![x](http://127.0.0.1:9/track.png)", "[click](javascript:alert(1))", "**bold** _it_ `code` ~~s~~",
    "# heading", "1. list", "$x^2$ :red[red] :material/warning:", "&lt;b&gt; &amp;", "a\\*b\\", "<img src=x onerror=alert(1)>",
])
def test_md_text_renders_as_the_characters_typed(text):
    import html
    import re

    import ui

    page = rendered(f"| fact | value |\n| --- | --- |\n| Profile | **{ui.md_text(text)}** |\n")
    assert page.count("<tr>") == 2  # the header and one row: no row added by the text
    cell = re.search(r"<td><strong>(.*?)</strong></td>", page, re.S)
    assert cell, page
    assert html.unescape(cell.group(1)) == " ".join(text.split())  # exactly the typed characters, as text
    assert "<b " not in cell.group(1) and "<img" not in cell.group(1) and "<a " not in cell.group(1)


def test_md_text_keeps_plain_names_readable():
    import ui

    assert ui.md_text("Alice Martin") == "Alice Martin"
    assert ui.md_text("clerk_ab12cd") == "clerk_ab12cd"  # an underscore inside a word is never emphasis


def test_no_page_passes_user_text_to_unsafe_html():
    from pathlib import Path

    interface = Path(__file__).resolve().parents[1]
    sources = {p.name: p.read_text() for p in [interface / "ui.py", *sorted((interface / "app_pages").glob("*.py"))]}
    unsafe = {name: text.count("unsafe_allow_html=True") for name, text in sources.items() if "unsafe_allow_html" in text}
    # only the decision box and the score scale (our own words and numbers; the subject is html.escape'd)
    assert unsafe == {"ui.py": 2}, unsafe


@pytest.mark.parametrize("flags", [[], ["identical_to_reference"]])
def test_the_unsafe_html_renderers_escape_what_the_api_and_users_sent(flags):
    import html

    import ui

    # the subject is a profile's name (user text); decision and flags come from the API
    box = ui.decision_html("genuine", {"forgeries_scoring_this_low": 0.01}, f"the profile {PAYLOAD}", flags + [PAYLOAD])
    assert "<b id=pwn" not in box and "INJECTED</b>" not in box
    assert html.escape(PAYLOAD) in box  # shown as the characters typed
    unknown = ui.decision_html(PAYLOAD, {}, "the reference", flags)
    assert "<b id=pwn" not in unknown and "INJECTED" not in unknown
    assert "INCONCLUSIVE" in unknown or "COPY" in unknown  # a decision the interface does not know: inconclusive
    scale = ui.distance_scale_html(0.07, PAYLOAD, 0.06, 0.09)
    assert "<b id=pwn" not in scale and "INJECTED" not in scale and "in the INCONCLUSIVE zone" in scale
    for field in range(3):  # numbers from the API that are text are refused, never written into the markup
        values = [0.07, 0.06, 0.09]
        values[field] = PAYLOAD
        with pytest.raises(ValueError):
            ui.distance_scale_html(values[0], "genuine", values[1], values[2])


@pytest.fixture
def staff_and_clerk(backend_url, unique_username, live_backend):
    """A clerk whose profile is named with the payload and has one verification against it, and a staff account."""
    tokens = {}
    for name in (unique_username, f"{unique_username}_staff"):
        body = requests.post(f"{backend_url}/api/auth/register/",
                             json={"username": name, "password": "correct horse battery"}, timeout=30).json()
        tokens[name] = body["token"]
    with sqlite3.connect(live_backend.db_path, timeout=20) as db:
        db.execute("UPDATE auth_user SET is_staff = 1 WHERE username = ?", (f"{unique_username}_staff",))
    db.close()
    return unique_username, tokens[unique_username], f"{unique_username}_staff", tokens[f"{unique_username}_staff"]


def test_a_profile_named_with_html_is_text_on_profiles_and_history(app_test, backend_url, staff_and_clerk, signature):
    import api_client as api

    clerk, token, staff, staff_token = staff_and_clerk
    client = api.SigverClient(backend_url, token=token)
    profile = client.create_profile(PAYLOAD, external_id="<i>ext</i>")
    client.add_references(profile["id"], [("<b>ref</b>.png", signature(51)), ("r2.png", signature(51, variant=1))])
    client.verify_profile(profile["id"], ("q.png", signature(51, variant=2)))

    at = app_test("profiles")
    at.session_state["token"], at.session_state["username"] = token, clerk
    run(at)
    markdown = [m.value for m in at.markdown]
    assert any(f"**{ui_md(PAYLOAD)}**" in m for m in markdown), markdown
    assert not any("<b id=pwn" in m or "\n| Checked by" in m for m in markdown + [c.value for c in at.caption])

    for user, user_token in ((clerk, token), (staff, staff_token)):  # the clerk, and the staff member reading it
        at = app_test("history")
        at.session_state["token"], at.session_state["username"] = user_token, user
        run(at)
        rows = at.dataframe[0].value
        mine = rows[rows["profile"] == PAYLOAD]  # a dataframe cell: plain text, the exact characters
        assert len(mine) == 1
        run(at.selectbox(key="history_record").set_value(int(mine["record"].iloc[0])))
        facts = dict(zip(at.dataframe[1].value["fact"], at.dataframe[1].value["value"]))
        assert facts["Profile"] == f"{PAYLOAD} (#{profile['id']})"
        assert facts["Checked by"].startswith(clerk)  # the one "Checked by": the payload added none
        assert not any("<b id=pwn" in m.value for m in at.markdown)


def ui_md(text: str) -> str:
    import ui

    return ui.md_text(text)


def test_the_two_html_blocks_escape_whatever_the_api_or_a_user_sent():
    """The decision box and the score scale are the only unsafe_allow_html blocks: a decision, subject, rates or
    flags carrying markup come out as escaped text, and a score that is not a number is refused, never rendered."""
    import ui

    markup = "<img src=x onerror=alert(1)>"
    box = ui.decision_html(markup, {"forgeries_scoring_this_low": 0.01, "genuine_scoring_this_high": 0.2},
                           subject=f"the profile {PAYLOAD}", flags=[markup])
    assert "<img" not in box and "<b " not in box and "INJECTED</b>" not in box
    assert ui.DECISION_STYLE["inconclusive"][0] in box  # an unknown decision reads as inconclusive
    named = ui.decision_html("genuine", {"forgeries_scoring_this_low": 0.01}, subject=f"the profile {PAYLOAD}")
    assert "<b " not in named and "&lt;b id=pwn" in named  # the subject is shown, as the characters typed
    for bad in ([markup, "forged", 0.1, 0.2], [0.1, "forged", markup, 0.2], [0.1, "forged", 0.05, markup]):
        with pytest.raises((TypeError, ValueError)):
            ui.distance_scale_html(*bad)
    assert "<img" not in ui.distance_scale_html("0.07", "inconclusive", 0.06, 0.09)  # text numbers stay numbers
    assert "<img" not in ui.distance_scale_html(0.07, markup, 0.06, 0.09)  # an unknown decision is not markup
