"""One login per clerk and the History page, headless (AppTest) against the real test backend: a signed-in clerk's
requests carry their token (the case record names them), History lists, filters, opens and exports the records,
and the sign-in is kept across a page refresh by an opaque session id that signing out makes worthless."""

from __future__ import annotations

import csv
import io

import pytest
import requests

PNG = "image/png"


def run(target):
    at = target.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def alerts(at, kind: str) -> str:
    return "\n".join(e.value for e in getattr(at, kind))


def markdown_text(at) -> str:
    return "\n".join(m.value for m in at.markdown)


@pytest.fixture
def clerk(backend_url, unique_username):
    """A registered clerk: (username, token)."""
    body = requests.post(f"{backend_url}/api/auth/register/",
                         json={"username": unique_username, "password": "correct horse battery"}, timeout=30).json()
    return unique_username, body["token"]


def signed_in(at, clerk):
    at.session_state["token"] = clerk[1]
    at.session_state["username"] = clerk[0]
    return at


def verify_on_the_verify_page(app_test, clerk, signature, a=(31, 0), b=(31, 3)):
    at = signed_in(app_test("verify"), clerk)
    run(at)
    at.file_uploader(key="verify_reference").set_value(("reference.png", signature(a[0], variant=a[1]), PNG))
    at.file_uploader(key="verify_questioned").set_value(("questioned.png", signature(b[0], variant=b[1]), PNG))
    run(at)
    run(at.button(key="verify_button").click())
    return at.session_state["verify_result"]["result"]


def test_history_asks_to_sign_in(app_test):
    at = run(app_test("history"))
    assert at.text_input(key="sign_in_username") is not None
    assert "Sign in to see the case records" in markdown_text(at)


def test_sign_in_on_history_then_an_empty_history(app_test, clerk):
    at = run(app_test("history"))
    at.text_input(key="sign_in_username").input(clerk[0])
    at.text_input(key="sign_in_password").input("correct horse battery")
    run(at.button(key="FormSubmitter:sign_in_form-Sign in").click())
    assert at.session_state["token"] not in ("", None, clerk[1])  # each sign-in is a new token
    assert at.session_state["session_id"]  # the opaque id the browser's cookie will hold
    assert f"Signed in as **{clerk[0]}**" in markdown_text(at)
    assert "No case records match" in alerts(at, "info")


def test_a_signed_in_verification_is_in_the_clerks_history(app_test, clerk, signature):
    result = verify_on_the_verify_page(app_test, clerk, signature)
    at = run(signed_in(app_test("history"), clerk))
    rows = at.dataframe[0].value
    assert len(rows) == 1
    assert rows["clerk"][0] == clerk[0]  # the Verify page sent the clerk's token
    assert rows["score"][0] == pytest.approx(result["score"], abs=1e-4)
    record_id = int(rows["record"][0])

    run(at.selectbox(key="history_record").set_value(record_id))
    assert f"Case record #{record_id}" in [h.value for h in at.subheader]
    facts = dict(zip(at.dataframe[1].value["fact"], at.dataframe[1].value["value"]))
    assert facts["Questioned image sha256"] and facts["Checked by"].startswith(clerk[0])
    # the file names and the cuts when the record holds them (the API may not say yet): never made up
    assert facts["Questioned file"] in ("questioned.png", "not recorded")
    assert facts["Reference files"] in ("reference.png", "not recorded")
    rates = result["decision_rates"]
    cuts = {m.label: m.value for m in at.metric}["Decision cuts"]
    assert cuts in (f"{rates['genuine_below']:.4f} / {rates['forged_above']:.4f}", "not recorded")

    run(at.button(key="history_export_button").click())
    data = at.session_state["history_csv"]["data"]
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert [int(r["id"]) for r in rows] == [record_id] and rows[0]["user"] == clerk[0]


def test_history_says_that_verifications_before_signing_in_are_not_listed(app_test, clerk):
    at = run(signed_in(app_test("history"), clerk))
    text = markdown_text(at) + alerts(at, "info")
    assert "before signing in" in text and "appear in no clerk's list" in text
    assert "Every verification made while signed in is recorded" not in text


def test_a_record_shows_file_names_and_cuts_only_when_it_holds_them():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("history_page", Path(__file__).resolve().parents[1] / "app_pages" / "6_History.py")
    page = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(page)
    assert page.file_names({"questioned_name": "q.png", "reference_names": ["a.png", "b.png"]}, "reference") == "a.png, b.png"
    assert page.file_names({"questioned_name": "q.png"}, "questioned") == "q.png"
    assert page.file_names({"reference_names": []}, "reference") == "not recorded"
    assert page.file_names({}, "questioned") == "not recorded"
    assert page.record_cuts({"threshold": 0.5, "decision_cuts": {"genuine_below": 0.3, "forged_above": 0.7}}) == (0.3, 0.7)
    assert page.record_cuts({"threshold": 0.5, "details": {"decision_rates": {"genuine_below": 0.2, "forged_above": 0.6}}}) == (0.2, 0.6)
    assert page.record_cuts({"threshold": 0.5, "decision_cuts": None, "details": {}}) is None  # never the threshold

    # the kept image, fetched with the clerk's client from the record's `thumbnail_url`; none asked for without it
    from unittest import mock

    client = mock.Mock()
    client.record_thumbnail.return_value = b"png bytes"
    with mock.patch.object(page.ui, "show_image") as shown:
        page.thumbnail_ui(client, {"id": 7, "questioned_name": "q.png"})
        assert not client.record_thumbnail.called and not shown.called
        page.thumbnail_ui(client, {"id": 7, "questioned_name": "q.png", "thumbnail_url": "/api/records/7/thumbnail/"})
    client.record_thumbnail.assert_called_once_with(7, "/api/records/7/thumbnail/")
    assert shown.call_args.args[:2] == (b"png bytes", "Questioned image · q.png") and shown.call_args.kwargs["alt"]


def test_history_filters(app_test, clerk, signature):
    result = verify_on_the_verify_page(app_test, clerk, signature)
    decision = result["decision"]
    other = next(d for d in ("genuine", "inconclusive", "forged") if d != decision)
    at = run(signed_in(app_test("history"), clerk))
    run(at.selectbox(key="history_decision").set_value(other))
    assert "No case records match" in alerts(at, "info")
    run(at.selectbox(key="history_decision").set_value(decision))
    assert len(at.dataframe[0].value) == 1
    run(at.selectbox(key="history_kind").set_value("profile"))
    assert "No case records match" in alerts(at, "info")


def test_a_revoked_token_signs_the_clerk_out(app_test, clerk, revoke_token):
    at = run(signed_in(app_test("history"), clerk))
    revoke_token(clerk[1])
    run(at)
    assert "token" not in at.session_state
    assert "Your session has ended" in alerts(at, "warning")


def _restore_script():
    import streamlit as st

    import session

    store = session.session_store()
    sid = store.create("token-of-clerk-7", "clerk7")
    restored = session.restore({session.SESSION_COOKIE: sid})  # a refresh: a new session with the cookie
    st.write(f"restored={restored} user={st.session_state.get('username')} token={st.session_state.get('token')}")
    session.sign_out()
    st.write(f"after sign-out: stored={store.get(sid) is not None}")
    st.session_state.clear()  # another refresh, the browser still sending the old cookie
    st.write(f"again={session.restore({session.SESSION_COOKIE: sid})} forged={session.restore({session.SESSION_COOKIE: 'x'})}")


def test_sign_in_survives_a_refresh_and_sign_out_ends_it():
    from streamlit.testing.v1 import AppTest

    at = run(AppTest.from_function(_restore_script, default_timeout=30))
    text = markdown_text(at)
    assert "restored=True user=clerk7 token=token-of-clerk-7" in text
    assert "after sign-out: stored=False" in text
    assert "again=False forged=False" in text
