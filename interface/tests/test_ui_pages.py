"""Each page headless (streamlit.testing AppTest) against the real backend started by the fixture
(`backend_url`: Django + SQLite + a small test model, real HTTP); failures are real too: nothing listening
(`down_url`), a server without a model and with a strict throttle (`degraded_backend_url`), a revoked token."""

from __future__ import annotations

import re

import pytest
import requests

PNG = "image/png"


def markdown_text(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def alerts(at, kind: str) -> str:
    return "\n".join(e.value for e in getattr(at, kind))


def run(target):
    """Run an AppTest, or the AppTest of a widget just changed (`at.button(...).click()`); no exception allowed."""
    at = target.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def upload_pair(at, prefix: str, reference: bytes, questioned: bytes):
    at.file_uploader(key=f"{prefix}_reference").set_value(("reference.png", reference, PNG))
    at.file_uploader(key=f"{prefix}_questioned").set_value(("questioned.png", questioned, PNG))
    return run(at)


# ------------------------------------------------------------------------------------ entry and sidebar


def test_app_entry_lands_on_verify_with_backend_status(app_test):
    at = run(app_test("app.py"))
    assert at.title[0].value.endswith("Verify a signature")
    assert "Online" in alerts(at.sidebar, "success")
    assert any("Model:" in c.value for c in at.sidebar.caption)


@pytest.mark.parametrize("page", ["verify", "explain", "profiles", "datasets", "model"])
def test_every_page_says_clearly_when_the_backend_is_down(app_test, monkeypatch, down_url, page):
    monkeypatch.setenv("SIGVER_API_URL", down_url)
    at = run(app_test(page))
    assert "Not reachable" in alerts(at.sidebar, "error")
    assert "cannot be reached" in alerts(at, "error")


def test_model_not_loaded_is_a_sidebar_warning_and_a_clear_error(app_test, monkeypatch, degraded_backend_url):
    monkeypatch.setenv("SIGVER_API_URL", degraded_backend_url)
    at = run(app_test("model"))
    assert "model is not loaded" in alerts(at.sidebar, "warning")
    assert "Not reachable" not in alerts(at.sidebar, "error")
    # 503 model_unavailable (or 429 if the degraded server's 1 request a minute is already used)
    assert "Could not load the model card" in alerts(at, "error") + alerts(at, "warning")


# ------------------------------------------------------------------------------------ Verify


def test_verify_needs_two_uploads(app_test):
    at = run(app_test("verify"))
    assert at.button(key="verify_button").disabled
    assert "Upload both signatures" in alerts(at, "info")


def test_verify_same_writer_shows_genuine(app_test, signature):
    at = upload_pair(run(app_test("verify")), "verify", signature(11), signature(11, variant=4))
    assert not at.button(key="verify_button").disabled
    run(at.button(key="verify_button").click())
    text = markdown_text(at)
    assert "GENUINE" in text and "in the GENUINE zone" in text
    assert "As the model sees them" in text
    labels = {m.label: m.value for m in at.metric}
    assert float(labels["Score"]) <= float(labels["Decision cuts"].split(" / ")[0])
    assert "consistent with the reference" in text and "very likely" not in text
    assert any("answered in" in c.value for c in at.caption)
    assert at.session_state["verify_result"]["result"]["decision"] == "genuine"
    assert not any(m.label == "Similarity" or "%" in str(m.value) for m in at.metric)  # no probability-like figure


def test_verify_with_the_crop_step(app_test, signature):
    at = upload_pair(run(app_test("verify")), "verify", signature(11), signature(11, variant=4))
    run(at.toggle(key="verify_questioned_crop_on").set_value(True))
    assert any("Only the box is compared" in c.value for c in at.caption)
    run(at.button(key="verify_button").click())
    result = at.session_state["verify_result"]["result"]
    assert result["decision"] in {"genuine", "inconclusive", "forged"}
    assert "Score:" in markdown_text(at)


@pytest.mark.parametrize("page", ["verify", "explain"])
def test_the_crop_drawn_is_sent_from_verify_and_from_explain(app_test, signature, monkeypatch, page):
    """Verify and Explain share one upload-and-request flow: the box drawn on either page reaches the API."""
    import api_client as api

    sent: list[dict] = []
    real_verify = api.SigverClient.verify

    def spy(self, *args, **kwargs):
        sent.append(kwargs)
        # answered without heatmaps (seconds of occlusion on a shared CPU): what is tested is what the page sends
        return real_verify(self, *args, **{**kwargs, "explain": False})

    monkeypatch.setattr(api.SigverClient, "verify", spy)
    at = upload_pair(run(app_test(page)), page, signature(11), signature(11, variant=4))
    run(at.toggle(key=f"{page}_questioned_crop_on").set_value(True))
    run(at.button(key=f"{page}_button").click())
    assert len(sent) == 1
    box = sent[0]["questioned_crop"]
    assert box is not None and len(box) == 4 and box[0] < box[2] and box[1] < box[3]
    assert sent[0]["reference_crop"] is None and sent[0]["explain"] is (page == "explain")
    assert at.session_state[f"{page}_result"]["result"]["decision"] in {"genuine", "inconclusive", "forged"}


def test_a_page_is_refused_with_what_to_do(app_test, signature):
    from made_up_pages import letter_page_png

    at = upload_pair(run(app_test("verify")), "verify", signature(11), letter_page_png())
    run(at.button(key="verify_button").click())
    error = alerts(at, "error")
    assert "signature crop" in error and "Crop the image to the signature" in error  # the page check or the gate


def test_verify_different_writer_shows_forged(app_test, signature):
    at = upload_pair(run(app_test("verify")), "verify", signature(12), signature(99))
    run(at.button(key="verify_button").click())
    assert "FORGED" in markdown_text(at)
    labels = {m.label: m.value for m in at.metric}
    assert float(labels["Score"]) > float(labels["Decision cuts"].split(" / ")[1])


def test_verify_backend_down_is_a_friendly_error(app_test, monkeypatch, down_url, signature):
    monkeypatch.setenv("SIGVER_API_URL", down_url)
    at = upload_pair(run(app_test("verify")), "verify", signature(1), signature(1, variant=1))
    run(at.button(key="verify_button").click())
    assert "Verification failed" in alerts(at, "error")
    assert "GENUINE" not in markdown_text(at) and "FORGED" not in markdown_text(at)


def test_verify_throttled_says_how_long_to_wait(app_test, monkeypatch, degraded_backend_url, signature):
    monkeypatch.setenv("SIGVER_API_URL", degraded_backend_url)
    requests.post(f"{degraded_backend_url}/api/verify/", timeout=30)  # uses up the 1 request a minute
    at = upload_pair(run(app_test("verify")), "verify", signature(1), signature(1, variant=1))
    run(at.button(key="verify_button").click())
    warning = alerts(at, "warning")
    assert "Too many requests" in warning and re.search(r"wait \d+ seconds", warning)
    assert "GENUINE" not in markdown_text(at) and "FORGED" not in markdown_text(at)


def test_verify_not_an_image_shows_the_server_message(app_test, signature):
    at = run(app_test("verify"))
    at.file_uploader(key="verify_reference").set_value(("scan.png", b"definitely not an image", PNG))
    at.file_uploader(key="verify_questioned").set_value(("q.png", signature(1), PNG))
    run(at)
    assert "no preview available" in alerts(at, "info")
    run(at.button(key="verify_button").click())
    error = alerts(at, "error")
    assert "Verification failed" in error and "not an image" in error.lower()
    assert "GENUINE" not in markdown_text(at) and "FORGED" not in markdown_text(at)


# ------------------------------------------------------------------------------------ Explain


def test_explain_reuses_the_verify_uploads_and_shows_heatmaps(app_test, signature):
    at = app_test("explain")
    at.session_state["pair"] = {
        "reference": {"name": "r.png", "data": signature(21)},
        "questioned": {"name": "q.png", "data": signature(77)},
    }
    run(at)
    assert any("Using the signatures from the **Verify** page" in c.value for c in at.caption)
    run(at.button(key="explain_button").click())
    text = markdown_text(at)
    assert "Where the model looked" in text and "How to read the heatmaps" in text
    assert "FORGED" in text or "GENUINE" in text


def test_explain_with_its_own_uploads(app_test, signature):
    at = upload_pair(run(app_test("explain")), "explain", signature(5), signature(5, variant=2))
    run(at.button(key="explain_button").click())
    assert "Where the model looked" in markdown_text(at)


# ------------------------------------------------------------------------------------ Profiles


def register(at, username: str, password: str = "correct horse battery"):
    at.text_input(key="register_username").input(username)
    at.text_input(key="register_password").input(password)
    at.text_input(key="register_password2").input(password)
    return run(at.button(key="FormSubmitter:register_form-Create account").click())


def profile_selector(at):
    """The profile selector (its key follows its labels: found by its label)."""
    return next(s for s in at.selectbox if s.label == "Profile")


def test_profiles_starts_with_sign_in(app_test):
    at = run(app_test("profiles"))
    assert at.text_input(key="sign_in_username") is not None
    assert [t.label for t in at.tabs] == ["Sign in", "Create an account"]


def test_profiles_wrong_password_is_a_clear_message(app_test, unique_username):
    at = run(app_test("profiles"))
    at.text_input(key="sign_in_username").input(unique_username)
    at.text_input(key="sign_in_password").input("nope-nope-nope")
    run(at.button(key="FormSubmitter:sign_in_form-Sign in").click())
    message = alerts(at, "error") + alerts(at, "warning")
    assert "Sign-in failed" in message and "Invalid username or password" in message
    assert "token" not in at.session_state


def test_profiles_full_enrollment_flow(app_test, unique_username, signature):
    at = register(run(app_test("profiles")), unique_username)
    assert at.session_state["token"]
    assert f"Signed in as **{unique_username}**" in markdown_text(at)
    assert "No profiles yet" in alerts(at, "info")

    at.text_input(key="new_profile_name").input("Alice Martin")
    at.text_input(key="new_profile_external_id").input("ACC-42")
    run(at.button(key="FormSubmitter:new_profile_form-Create profile").click())
    assert "Profile **Alice Martin** created" in alerts(at, "success")
    assert profile_selector(at).options == ["Alice Martin (ACC-42) · 0 references"]

    uploader = at.file_uploader(key="reference_upload_0")
    uploader.set_value([(f"ref{i}.png", signature(31, variant=i), PNG) for i in range(3)])
    run(at)
    run(at.button(key="add_references_button").click())
    assert "3 references added" in alerts(at, "success")
    assert "3 genuine reference signatures on file" in markdown_text(at)
    # the selector's count follows the upload, and the page says how far 3 references are from the published figures
    assert profile_selector(at).options == ["Alice Martin (ACC-42) · 3 references"]
    assert "the published figures need 5" in alerts(at, "info")
    delete_buttons = [b for b in at.button if b.key and b.key.startswith("delete_reference_")]
    assert len(delete_buttons) == 3
    ref_ids = [int(b.key.rsplit("_", 1)[1]) for b in delete_buttons]

    at.file_uploader(key="profile_questioned").set_value(("q.png", signature(31, variant=8), PNG))
    run(at)
    run(at.button(key="profile_verify_button").click())
    text = markdown_text(at)
    assert "GENUINE" in text and "Score against this person's references" in text
    assert "a variable signer is allowed more distance" in text
    result = at.session_state["profile_verify_result"]["result"]
    closest_first = [r["id"] for r in sorted(result["references"], key=lambda r: r["distance"])]
    assert sorted(closest_first) == sorted(ref_ids)  # stable ids, not positions

    at.file_uploader(key="profile_questioned").set_value(("other.png", signature(55), PNG))
    run(at)
    run(at.button(key="profile_verify_button").click())
    assert "FORGED" in markdown_text(at)

    run(delete_buttons[0].click())
    assert f"Reference {ref_ids[0]} deleted" in alerts(at, "success")
    assert "2 genuine reference signatures on file" in markdown_text(at)
    # ids stay: the remaining references keep theirs
    assert [int(b.key.rsplit("_", 1)[1]) for b in at.button if b.key and b.key.startswith("delete_reference_")] == ref_ids[1:]

    pid = at.session_state["profile_id"]
    at.checkbox(key=f"confirm_delete_profile_{pid}").check()
    run(at)
    run(at.button(key="delete_profile_button").click())
    assert "Profile Alice Martin deleted" in alerts(at, "success")
    assert "No profiles yet" in alerts(at, "info")

    run(at.button(key="sign_out_button").click())
    assert "token" not in at.session_state
    assert at.text_input(key="sign_in_username") is not None


def test_profiles_sign_in_with_existing_account(app_test, backend_url, unique_username):
    import api_client as api

    api.SigverClient(backend_url).register(unique_username, "correct horse battery")
    at = run(app_test("profiles"))
    at.text_input(key="sign_in_username").input(unique_username)
    at.text_input(key="sign_in_password").input("correct horse battery")
    run(at.button(key="FormSubmitter:sign_in_form-Sign in").click())
    assert at.session_state["username"] == unique_username
    assert "Sign out" in [b.label for b in at.button]


def test_sign_out_ends_the_token_on_the_server(app_test, backend_url, unique_username):
    import api_client as api

    at = register(run(app_test("profiles")), unique_username)
    token = at.session_state["token"]
    assert api.SigverClient(backend_url, token=token).profiles() == []
    run(at.button(key="sign_out_button").click())
    assert "token" not in at.session_state
    with pytest.raises(api.AuthError):  # a copy of the token is worthless
        api.SigverClient(backend_url, token=token).profiles()


def test_profiles_expired_token_goes_back_to_sign_in(app_test, revoke_token, unique_username):
    at = register(run(app_test("profiles")), unique_username)
    assert at.session_state["token"]
    revoke_token(at.session_state["token"])
    run(at)  # any rerun: the profile list now answers 401
    assert "token" not in at.session_state
    assert "Please sign in again" in alerts(at, "warning")
    assert at.text_input(key="sign_in_username") is not None


def test_profiles_register_password_mismatch(app_test, unique_username):
    at = run(app_test("profiles"))
    at.text_input(key="register_username").input(unique_username)
    at.text_input(key="register_password").input("correct horse battery")
    at.text_input(key="register_password2").input("something else")
    run(at.button(key="FormSubmitter:register_form-Create account").click())
    assert "passwords differ" in alerts(at, "error")


# ------------------------------------------------------------------------------------ Datasets


def test_datasets_browse_pair_and_batch(app_test, backend_url):
    import api_client as api

    at = run(app_test("datasets"))
    assert at.selectbox(key="dataset_name").value
    assert {m.label for m in at.metric} >= {"Writers", "Genuine signatures", "Forgeries"}
    text = markdown_text(at)
    assert "**Genuine**" in text and "**Forged**" in text
    name = at.selectbox(key="dataset_name").value
    assert at.selectbox(key=f"dataset_split_{name}").value == "test"  # writers the model never saw, by default

    at.radio(key="dataset_pair_kind").set_value("skilled")
    run(at.button(key="dataset_pair_button").click())
    judged = alerts(at, "success") + alerts(at, "error") + alerts(at, "warning")  # right, wrong, inconclusive
    assert "Ground truth: **forged**" in markdown_text(at) + judged

    at.slider(key="dataset_batch_limit").set_value(10)
    run(at.button(key="dataset_batch_button").click())
    labels = {m.label: m.value for m in at.metric}
    assert labels["Pairs"] == "10"
    assert all(labels[k].endswith("%") for k in ("Decided right", "Inconclusive", "Decided wrong"))
    table = at.dataframe[-1].value
    assert len(table) == 10
    assert set(table["decision"]) <= {"genuine", "inconclusive", "forged"} and "verdict" not in table.columns
    assert set(table["outcome"]) <= {"✔ right", "✘ wrong", "? inconclusive"}
    split_of = api.SigverClient(backend_url).dataset(name).get("split_of_writer") or {}
    if split_of:  # the default split drew only test writers' pairs
        writers = set(table["writer A"]) | set(table["writer B"])
        assert writers and {split_of.get(str(w)) for w in writers} == {"test"}


def test_datasets_split_filters_writers(app_test, backend_url):
    import api_client as api

    client = api.SigverClient(backend_url)
    name = client.datasets()[0]["name"]
    info = client.dataset(name)
    if not info.get("split_of_writer"):
        pytest.skip("the dataset has no split file")
    at = run(app_test("datasets"))
    at.selectbox(key=f"dataset_split_{name}").set_value("test")
    run(at)
    writer_box = at.selectbox(key=f"dataset_writer_{name}_test")
    assert set(writer_box.options) == {w for w, s in info["split_of_writer"].items() if s == "test"}


# ------------------------------------------------------------------------------------ Model


def test_model_card_page(app_test):
    at = run(app_test("model"))
    assert at.title[0].value.endswith("The model")
    labels = {m.label for m in at.metric}
    assert "Equal-error threshold (two images)" in labels
    table = at.dataframe[0].value
    assert "EER (equal error rate)" in table.columns and len(table) >= 1
    assert "Measured performance" in [s.value for s in at.subheader]
    assert "ROC / DET curves" in [s.value for s in at.subheader]
    assert len(at.get("image")) >= 2  # the backend's pairwise.png and reference_k10.png




# ------------------------------------------------------------------------------------ shared display pieces


def test_distance_scale_reads_without_a_legend():
    import ui

    html = ui.distance_scale_html(0.052, "genuine", 0.06, 0.09)
    assert "in the GENUINE zone (at or below 0.060)" in html and "genuine cut" in html and "forged cut" in html
    assert "in the INCONCLUSIVE zone (0.060 to 0.090)" in ui.distance_scale_html(0.07, "inconclusive", 0.06, 0.09)
    assert "in the FORGED zone (above 0.090)" in ui.distance_scale_html(0.2, "forged", 0.06, 0.09)
    two_way = ui.distance_scale_html(0.2, "forged", 0.075)  # an older card: one cut, no inconclusive zone
    assert "in the FORGED zone (above 0.075)" in two_way and "forged cut" not in two_way


def test_the_zone_is_the_apis_decision_and_the_cuts_are_the_apis():
    """The interface keeps no copy of the decision rule: the zone named is the answer's `decision` (here one the
    cuts alone would not give), the marks are the answer's cuts, and an answer without cuts draws no scale."""
    import ui
    from unittest import mock

    assert "in the INCONCLUSIVE zone" in ui.distance_scale_html(0.01, "inconclusive", 0.06, 0.09)
    assert "in the INCONCLUSIVE zone" in ui.distance_scale_html(0.01, "no such decision", 0.06, 0.09)
    answer = {"decision": "forged", "score": 0.5, "threshold": 0.4,
              "decision_rates": {"genuine_below": 0.25, "forged_above": 0.45}}
    assert ui.decision_cuts(answer) == (0.25, 0.45)
    assert ui.decision_cuts({"threshold": 0.4}) == (0.4, 0.4)  # a card without cuts decided at its threshold
    assert ui.decision_cuts({"details": {"decision_rates": {"genuine_below": 0.1, "forged_above": 0.2}}}) == (0.1, 0.2)
    assert ui.decision_cuts({"genuine_below": 0.1, "forged_above": 0.3, "threshold": 0.2}) == (0.1, 0.3)  # a record
    assert ui.decision_cuts({"decision": "forged"}) is None
    assert ui.decision_cuts({"decision_rates": {"genuine_below": "x", "forged_above": 1}}) is None

    def shown(result):
        out: list[str] = []
        metric = mock.MagicMock()
        with mock.patch.object(ui.st, "markdown", side_effect=lambda body, **_: out.append(body)), \
                mock.patch.object(ui.st, "columns", return_value=(mock.MagicMock(), metric)), \
                mock.patch.object(ui.st, "caption"):
            ui.result_ui(result)
        return "".join(out), metric.metric.call_args.args[1]

    page, cuts = shown(answer)
    assert "Score: 0.500 — in the FORGED zone (above 0.450)" in page and cuts == "0.250 / 0.450"
    page, cuts = shown({"decision": "forged", "score": 0.5})
    assert "Score:" not in page and "zone" not in page and cuts == "not given"


@pytest.mark.parametrize("decision, rates, says, never", [
    ("genuine", {"forgeries_scoring_this_low": 0.013}, ["1 in 100 skilled forgeries scored this close"],
     ["very likely", "same person"]),
    ("genuine", {"forgeries_scoring_this_low": 0.004}, ["fewer than 1 in 100 skilled forgeries"], ["0 in 100"]),
    ("inconclusive", {"forgeries_scoring_this_low": 0.2, "genuine_scoring_this_high": 0.3},
     ["refer the signature to a specialist", "20 in 100 skilled forgeries", "30 in 100 genuine"], ["GENUINE"]),
    ("forged", {"genuine_scoring_this_high": 0.02}, ["possible forgery", "2 in 100 genuine signatures"], []),
    ("forged", None, ["possible forgery"], ["in 100"]),  # no measured rates: no figure is claimed
])
def test_decision_wording_claims_only_the_measured_rates(decision, rates, says, never):
    import ui

    text = ui.decision_text(decision, rates)
    for phrase in says:
        assert phrase in text
    for phrase in never:
        assert phrase not in text
    assert ui.DECISION_STYLE[decision][0] in ui.decision_html(decision, rates)


def test_a_copy_is_said_to_be_a_copy():
    import ui

    html = ui.decision_html("inconclusive", {"forgeries_scoring_this_low": 0.0}, flags=["identical_to_reference"])
    assert "COPY OF THE REFERENCE" in html and "not a new signature" in html and "GENUINE" not in html


def rendered_result(answer: dict) -> str:
    """The markdown `ui.result_ui` writes for an API answer, joined (Streamlit's calls stubbed)."""
    import ui
    from unittest import mock

    shown: list[str] = []
    with mock.patch.object(ui.st, "markdown", side_effect=lambda body, **_: shown.append(body)), \
            mock.patch.object(ui.st, "columns", return_value=(mock.MagicMock(), mock.MagicMock())), \
            mock.patch.object(ui.st, "caption"):
        ui.result_ui(answer)
    return "".join(shown)


def test_a_forged_score_cut_from_a_page_is_said_to_be_undecided_and_names_no_zone():
    answer = {"decision": "inconclusive", "score": 1.4, "score_method": "pairwise", "threshold": 0.5,
              "decision_rates": {"genuine_below": 0.3, "forged_above": 0.8, "forgeries_scoring_this_low": 0.9,
                                 "genuine_scoring_this_high": 0.01},
              "flags": ["cut_from_a_page"], "warnings": [], "model_version": "m", "elapsed_ms": 1.0}
    page = rendered_result(answer)
    assert "INCONCLUSIVE" in page and "cut from a page" in page and "compare a clean scan" in page
    assert "FORGED" not in page and "1 in 100 genuine" not in page  # no zone, no rate claimed for a page's crop


def test_an_answer_without_a_known_decision_is_never_shown_as_genuine():
    import ui

    assert ui.decision_of({"match": True}) == "inconclusive"
    assert ui.decision_of({"decision": "forged", "match": False}) == "forged"


def test_the_score_is_read_from_score_and_its_method_from_score_method():
    import ui

    profile = {"score": 0.8, "score_method": "normalized", "mean_distance": 0.4}
    assert (ui.score_of(profile), ui.score_method_of(profile)) == (0.8, "normalized")
    pair = {"score": 0.3, "score_method": "pairwise", "distance": 0.3}  # `distance`: deprecated alias
    assert (ui.score_of(pair), ui.score_method_of(pair)) == (0.3, "pairwise")


def test_a_copy_answer_shows_no_genuine_zone():
    """A copy scores about 0: the scale would put it in the genuine zone; the answer shows no zone at all."""
    copy = {"decision": "inconclusive", "score": 0.0, "score_method": "pairwise", "threshold": 0.5,
            "decision_rates": {"genuine_below": 0.3, "forged_above": 0.8, "forgeries_scoring_this_low": 0.0,
                               "genuine_scoring_this_high": 1.0},
            "flags": ["identical_to_reference"], "warnings": [], "model_version": "m", "elapsed_ms": 1.0}
    page = rendered_result(copy)
    assert "COPY OF THE REFERENCE" in page
    assert "GENUINE zone" not in page and "GENUINE</span>" not in page


def test_the_interface_never_imports_torch_or_sigml(down_url):
    """Every page run in a fresh interpreter: neither torch nor the ML core gets imported."""
    import subprocess
    import sys
    from pathlib import Path

    # Not `from conftest import ...`: with several conftest.py files in one run that name is ambiguous.
    INTERFACE_DIR = Path(__file__).resolve().parents[1]
    pages = ["app.py"] + sorted(f"app_pages/{p.name}" for p in (INTERFACE_DIR / "app_pages").glob("*.py"))
    assert len(pages) == 7, pages  # app + Verify, Explain, Profiles, Datasets, Model, History

    script = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"for page in {pages!r}:\n"
        f"    AppTest.from_file({str(INTERFACE_DIR)!r} + '/' + page, default_timeout=60).run()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'sigml'))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=INTERFACE_DIR, capture_output=True, text=True,
                          env={**__import__("os").environ, "SIGVER_API_URL": down_url}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_no_import_loop_between_the_interface_modules():
    """Every import between the interface's own modules, also one inside a function, goes one way."""
    import ast
    from pathlib import Path

    interface = Path(__file__).resolve().parents[1]
    modules = {p.stem: p for p in interface.glob("*.py")}
    imports: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
        imports[name] = (found & set(modules)) - {name}
    assert {"ui", "session"} <= imports["sidebar"] and "ui" in imports["session"]  # the graph was read

    def loop_from(name: str, path: tuple[str, ...]) -> tuple[str, ...] | None:
        if name in path:
            return path + (name,)
        for dep in sorted(imports[name]):
            found_loop = loop_from(dep, path + (name,))
            if found_loop:
                return found_loop
        return None

    assert [loop for m in sorted(modules) if (loop := loop_from(m, ()))] == []


def test_profiles_duplicates_refused_and_outliers_flagged(app_test, unique_username, signature):
    at = register(run(app_test("profiles")), unique_username)
    at.text_input(key="new_profile_name").input("Bea")
    run(at.button(key="FormSubmitter:new_profile_form-Create profile").click())
    # three of Bea's signatures and one of someone else's: that one does not match the others
    at.file_uploader(key="reference_upload_0").set_value(
        [(f"ref{i}.png", signature(41, variant=i), PNG) for i in range(3)] + [("wrong.png", signature(88), PNG)])
    run(at)
    run(at.button(key="add_references_button").click())
    warning = alerts(at, "warning")
    assert "does not match the other references" in warning
    assert "What it means" in warning and "would decide it forged" in warning  # explained, not just "delete it"
    assert "What to do" in warning and "enrol a clean, cropped scan" in warning
    outliers = [r["id"] for r in ui_client_references(at) if r["outlier"]]
    assert outliers and all(f"Reference {i}" in warning for i in outliers)
    # the same image again is refused with the server's reason
    at.file_uploader(key="reference_upload_1").set_value([("again.png", signature(41, variant=0), PNG)])
    run(at)
    run(at.button(key="add_references_button").click())
    assert "could not be added" in alerts(at, "error") and "same image as reference" in alerts(at, "error")


def test_two_profiles_with_one_name_are_told_apart(app_test, unique_username):
    at = register(run(app_test("profiles")), unique_username)
    for external_id in ("ACC-1", ""):
        at.text_input(key="new_profile_name").input("Carl Dupont" if external_id else "carl  dupont")
        at.text_input(key="new_profile_external_id").input(external_id)
        run(at.button(key="FormSubmitter:new_profile_form-Create profile").click())
    assert "You now have 2 profiles named" in alerts(at, "warning")
    assert "Another profile has the same name" in alerts(at, "warning")
    labels = profile_selector(at).options
    assert len(labels) == 2 and all(" · #" in label for label in labels)  # each shows its id
    ids = sorted(int(label.split(" · #")[1].split(" ")[0]) for label in labels)
    assert ids[0] != ids[1]


def ui_client_references(at) -> list[dict]:
    import api_client

    client = api_client.SigverClient(api_client.api_url(), token=at.session_state["token"])
    return client.references(at.session_state["profile_id"])


def test_model_page_explains_the_three_answers_with_the_shipped_card():
    """The shipped model card (decision bands, test-writer rates) rendered by the Model page's section."""
    import json
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    card = json.loads((Path(__file__).resolve().parents[2] / "trained_model_parameters" / "siamese_resnet18.json").read_text())

    def page(card: dict) -> None:
        import importlib.util
        import sys
        from pathlib import Path

        interface = Path.cwd() / "interface"
        sys.path.insert(0, str(interface))
        spec = importlib.util.spec_from_file_location("model_page", interface / "app_pages" / "5_Model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.bands_ui(card)

    at = AppTest.from_function(page, args=(card,), default_timeout=60).run()
    assert not at.exception
    assert "How the answer is decided" in [s.value for s in at.subheader]
    table = at.dataframe[0].value
    assert list(table["comparison"]) == ["Two images (one reference)", "Against a profile's references"]
    macro = card["metrics"]["test_macro"]["decisions"]["headline"]
    assert table["skilled forgeries decided genuine"][1] == f"{macro['forged']['genuine']:.1%}"
    assert set(table["measured on"]) == {"test writers (mean of the datasets)"}
