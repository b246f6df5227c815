"""The crop step (issue 27, interface): the box starts on the signature POST /api/locate/ found (asked once per file),
the image is drawn large enough to adjust it, a refused page's suggested crop is offered, Verify and Explain send the
same box, and Profiles crops each reference and the questioned signature.

Verify and Explain run against the fake backend (tests/fake_backend.py: it "locates" a known box, answers a canned
decision and keeps the fields it was sent); Profiles runs against the real backend with only the locate answer
taken from the fake."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from made_up_pages import SIGNED_LETTER_BOX, letter_page_png, signed_letter_png

PNG = "image/png"
LOCATED = "300,900,600,1020"  # the fake backend's default located box on any image


def run(target):
    at = target.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def captions(at) -> str:
    return "\n".join(c.value for c in at.caption)


def alerts(at, kind: str) -> str:
    return "\n".join(e.value for e in getattr(at, kind))


def sent(fake, path: str) -> list[dict[str, str]]:
    return [dict(fields) for fields in fake.state.sent(path)]


@pytest.fixture
def cropper_calls(monkeypatch):
    """What each st_cropper call got: the image drawn and the keyword arguments (the real component still runs)."""
    import streamlit_cropper

    calls: list[dict] = []
    real = streamlit_cropper.st_cropper

    def spy(img, **kwargs):
        calls.append({"size": img.size, **kwargs})
        return real(img, **kwargs)

    monkeypatch.setattr(streamlit_cropper, "st_cropper", spy)
    return calls


def upload_pair(at, prefix: str, reference: bytes, questioned: bytes):
    at.file_uploader(key=f"{prefix}_reference").set_value(("reference.png", reference, PNG))
    at.file_uploader(key=f"{prefix}_questioned").set_value(("page.png", questioned, PNG))
    return run(at)


@pytest.mark.parametrize("page", ["verify", "explain"])
def test_the_crop_box_starts_on_the_located_signature(fake_app, fake, signature, cropper_calls, page):
    at = upload_pair(run(fake_app(page)), page, signature(3), letter_page_png())
    assert sent(fake, "/api/locate/") == []  # nothing asked before the crop step is on
    run(at.toggle(key=f"{page}_questioned_crop_on").set_value(True))
    assert "The box starts on the signature the server located: 300 x 120 pixels at (300, 900), confidence 0.87" \
        in captions(at)
    assert "Only the box is compared: 300 x 120 pixels" in captions(at)
    # the 850 x 1100 page drawn at its own size (no longer streamlit-cropper's 700 px), the box in those pixels
    call = cropper_calls[-1]
    assert call["size"] == (850, 1100) and call["should_resize_image"] is False and call["realtime_update"] is True
    left, right, top, bottom = call["default_coords"]
    assert (left, top) == (300, 900) and 590 <= right <= 600 and 1010 <= bottom <= 1020
    key = call["key"]
    run(at)  # a rerun (as after a drag): the same key and arguments, and the locator is not asked again
    assert cropper_calls[-1]["key"] == key and cropper_calls[-1]["default_coords"] == call["default_coords"]
    assert [f["image"] for f in sent(fake, "/api/locate/")] == ["page.png"]
    run(at.button(key=f"{page}_button").click())
    (verify,) = sent(fake, "/api/verify/")
    assert verify["questioned_crop"] == LOCATED and "reference_crop" not in verify
    assert verify["explain"] == ("true" if page == "explain" else "false")


def test_a_large_page_is_drawn_large_enough_to_adjust(fake_app, fake, signature, cropper_calls):
    page = Image.new("L", (2000, 3000), 250)
    buf = io.BytesIO()
    page.save(buf, format="PNG")
    fake.state.located["image_size"] = [2000, 3000]
    at = upload_pair(run(fake_app("verify")), "verify", signature(3), buf.getvalue())
    run(at.toggle(key="verify_questioned_crop_on").set_value(True))
    width, height = cropper_calls[-1]["size"]
    assert height == 1100 and width == 733  # was 466 x 700
    left, _, top, _ = cropper_calls[-1]["default_coords"]
    assert (left, top) == (110, 330)  # the located box at the scale drawn (300 * 0.3667, 900 * 0.3667)
    run(at.button(key="verify_button").click())
    assert sent(fake, "/api/verify/")[0]["questioned_crop"] == LOCATED  # sent in the page's own pixels


def test_nothing_located_starts_around_the_whole_image_and_says_so(fake_app, fake, signature):
    from fake_backend import located_answer

    fake.state.located = located_answer([])
    at = upload_pair(run(fake_app("verify")), "verify", signature(3), letter_page_png())
    run(at.toggle(key="verify_questioned_crop_on").set_value(True))
    text = captions(at)
    assert "No signature was located on this image, so the box starts around the whole image" in text
    assert "finds about 9 in 10 signatures on documents" in text  # the server's note, as it sent it
    run(at.button(key="verify_button").click())
    assert sent(fake, "/api/verify/")[0]["questioned_crop"] == "0,0,850,1100"


def test_explain_sends_the_box_drawn_on_verify(fake_app, fake, signature):
    verify = upload_pair(run(fake_app("verify")), "verify", signature(3), letter_page_png())
    run(verify.toggle(key="verify_questioned_crop_on").set_value(True))
    explain = fake_app("explain")
    for key in ("pair", "crop_state", "located"):  # what going to the other page keeps (session_state)
        explain.session_state[key] = verify.session_state[key]
    run(explain)
    assert explain.toggle(key="explain_questioned_crop_on").value is True
    run(explain.button(key="explain_button").click())
    assert sent(fake, "/api/verify/")[0]["questioned_crop"] == LOCATED
    assert len(sent(fake, "/api/locate/")) == 1  # asked once for this file, on either page


def test_a_refused_page_offers_the_suggested_crop(fake_app, fake, signature):
    suggested = {"box": [320, 910, 590, 1010], "crop": "320,910,590,1010", "confidence": 0.74}
    fake.state.fail_next("/api/verify/", 422, "not_a_signature",
                         "questioned: this does not look like a signature crop. Crop the image to the signature.",
                         details={"field": "questioned", "suggested_crops": [suggested]})
    at = upload_pair(run(fake_app("verify")), "verify", signature(3), letter_page_png())
    run(at.button(key="verify_button").click())
    assert "does not look like a signature crop" in alerts(at, "error")
    assert "found what looks like a signature on the questioned image: 270 x 100 pixels at (320, 910)" \
        in alerts(at, "info")
    run(at.button(key="verify_suggestion_button").click())
    assert at.toggle(key="verify_questioned_crop_on").value is True
    assert "The box starts on the crop the server suggested (confidence 0.74)" in captions(at)
    assert not [b for b in at.button if b.key == "verify_suggestion_button"]  # offered once
    run(at.button(key="verify_button").click())
    assert sent(fake, "/api/verify/")[-1]["questioned_crop"] == "320,910,590,1010"
    assert "INCONCLUSIVE" in "\n".join(m.value for m in at.markdown)
    assert sent(fake, "/api/locate/") == []  # the suggested box: no need to locate


def test_an_auto_cropped_answer_shows_the_box_used():
    from streamlit.testing.v1 import AppTest

    def page() -> None:
        import ui
        from fake_backend import FAKE_DECISION, THUMBNAIL

        ui.result_ui({**FAKE_DECISION, "auto_crops": [
            {"field": "questioned", "box": [300, 900, 600, 1020], "crop": "300,900,600,1020", "confidence": 0.87,
             "thumbnail": THUMBNAIL}]})

    at = AppTest.from_function(page, default_timeout=60).run()
    assert not at.exception
    assert "The signature was found for you on the questioned image: this box was used (300 x 120 pixels at " \
           "(300, 900))" in alerts(at, "info")
    assert len(at.get("image")) == 1


def test_the_client_sends_reference_crops_and_auto_crop(fake):
    import api_client as api

    client = api.SigverClient(fake.url, token="t")
    created = client.add_references(7, [("a.png", b"a"), ("b.png", b"b")], crops=[(1, 2, 30, 40), None])
    assert [r["crop"] for r in created] == ["1,2,30,40", ""]
    client.add_references(7, [("c.png", b"c")])  # no crop anywhere: no `crops` field at all
    client.verify_profile(7, ("q.png", b"q"), crop=(5, 6, 70, 80), auto_crop=True)
    client.verify(b"r", b"q", auto_crop=True)
    first, second = fake.state.sent("/api/profiles/7/references/")
    assert [v for k, v in first if k == "crops"] == ["1,2,30,40", ""]
    assert [k for k, _ in second] == ["images"]
    assert dict(fake.state.sent("/api/profiles/7/verify/")[0]) == {"crop": "5,6,70,80", "auto_crop": "true",
                                                                  "questioned": "q.png"}
    assert dict(fake.state.sent("/api/verify/")[0])["auto_crop"] == "true"
    assert client.locate(b"page")["signatures"][0]["crop"] == LOCATED
    with pytest.raises(ValueError):
        client.add_references(7, [("a.png", b"a")], crops=[None, None])


# ------------------------------------------------------------------------------------ the real backend


def inside(box, outer) -> bool:
    return outer[0] <= box[0] < box[2] <= outer[2] and outer[1] <= box[1] < box[3] <= outer[3]


def test_a_signed_letter_is_refused_then_verified_on_the_suggested_crop(app_test, signature):
    """The real API: a page is refused with the located signature as its suggested crop; one click takes it as the
    crop box and the same page then gets a decision."""
    at = run(app_test("verify"))
    at.file_uploader(key="verify_reference").set_value(("reference.png", signature(11), PNG))
    at.file_uploader(key="verify_questioned").set_value(("letter.png", signed_letter_png(), PNG))
    run(at)
    run(at.button(key="verify_button").click())
    assert "signature crop" in alerts(at, "error") and "Crop the image" in alerts(at, "error")  # page check or gate
    assert "found what looks like a signature on the questioned image" in alerts(at, "info")
    run(at.button(key="verify_suggestion_button").click())
    assert "The box starts on the crop the server suggested" in captions(at)
    run(at.button(key="verify_button").click())
    assert not alerts(at, "error")
    assert at.session_state["verify_result"]["result"]["decision"] in {"genuine", "inconclusive", "forged"}
    assert inside(at.session_state["crop_state"]["pair_questioned"]["box"], SIGNED_LETTER_BOX)


def test_the_real_locator_prefills_the_box(app_test, signature, cropper_calls):
    at = run(app_test("verify"))
    at.file_uploader(key="verify_reference").set_value(("reference.png", signature(11), PNG))
    at.file_uploader(key="verify_questioned").set_value(("letter.png", signed_letter_png(), PNG))
    run(at)
    run(at.toggle(key="verify_questioned_crop_on").set_value(True))
    assert "The box starts on the signature the server located" in captions(at)
    left, right, top, bottom = cropper_calls[-1]["default_coords"]
    assert inside((left, top, right, bottom), SIGNED_LETTER_BOX)
    run(at.button(key="verify_button").click())
    assert at.session_state["verify_result"]["result"]["decision"] in {"genuine", "inconclusive", "forged"}


# ------------------------------------------------------------------------------------ Profiles


def test_profiles_crops_each_reference_and_the_questioned_signature(app_test, fake, monkeypatch, signature,
                                                                    unique_username, cropper_calls):
    """Real backend; only the locate answer comes from the fake (it "finds" a box on the 300 x 120 drawings)."""
    import api_client as api
    from fake_backend import located_answer

    fake.state.located = located_answer([([20, 10, 280, 110], 0.9)], image_size=(300, 120))
    real_locate = api.SigverClient.locate
    monkeypatch.setattr(api.SigverClient, "locate", lambda self, image: real_locate(api.SigverClient(fake.url), image))
    calls: dict[str, list] = {"add_references": [], "verify_profile": []}
    for name in calls:
        real = getattr(api.SigverClient, name)

        def spy(self, *args, _real=real, _name=name, **kwargs):
            calls[_name].append(kwargs)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(api.SigverClient, name, spy)

    at = app_test("profiles")
    run(at)
    at.text_input(key="register_username").input(unique_username)
    at.text_input(key="register_password").input("correct horse battery")
    at.text_input(key="register_password2").input("correct horse battery")
    run(at.button(key="FormSubmitter:register_form-Create account").click())
    at.text_input(key="new_profile_name").input("Dora")
    run(at.button(key="FormSubmitter:new_profile_form-Create profile").click())
    at.file_uploader(key="reference_upload_0").set_value(
        [(f"ref{i}.png", signature(61, variant=i), PNG) for i in range(2)])
    run(at)
    toggles = [t for t in at.toggle if t.key and t.key.startswith("reference_0_") and t.key.endswith("_crop_on")]
    assert [t.label for t in toggles] == ["Crop ref0\\.png to the signature", "Crop ref1\\.png to the signature"]
    run(toggles[0].set_value(True))
    assert "The box starts on the signature the server located: 260 x 100 pixels at (20, 10), confidence 0.90" \
        in captions(at)
    run(at.button(key="add_references_button").click())
    assert "2 references added" in alerts(at, "success")
    assert calls["add_references"][-1]["crops"] == [(20, 10, 280, 110), None]

    at.file_uploader(key="profile_questioned").set_value(("q.png", signature(61, variant=5), PNG))
    run(at)
    run(at.toggle(key="profile_questioned_c_crop_on").set_value(True))
    assert cropper_calls[-1]["default_coords"][0:3:2] == (20, 10)
    run(at.button(key="profile_verify_button").click())
    assert calls["verify_profile"][-1]["crop"] == (20, 10, 280, 110)
    assert at.session_state["profile_verify_result"]["result"]["decision"] in {"genuine", "inconclusive", "forged"}
    assert len(fake.state.sent("/api/locate/")) == 2  # one per file cropped
