"""`auto_crop=true`: a page sent to an endpoint that takes a signature is judged on the best box the signature locator
finds on it, and the answer says so (`auto_crops`: the box, its crop value, the locator's confidence, a thumbnail);
without it the page is refused. Reference crops (`crop`, `crops`) are stored so a new model re-embeds the same part."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from django.urls import reverse

import sigml.locate
from api_helpers import error_of, letter_page, png, upload
from audit.models import VerificationRecord
from sigml.locate import LocatedSignature
from signatures.models import Reference
from test_api_profiles import add_references, create_profile, references_url, verify_url

pytestmark = pytest.mark.django_db
VERIFY = reverse("api:verify")
SIGNATURE_BOX = [450, 950, 750, 1070]  # where letter_page() pastes its signature (300 x 120)


def test_a_page_with_auto_crop_is_judged_on_the_located_signature_and_says_so(client):
    data = {"reference": upload(png(1)), "questioned": upload(letter_page(), "letter.png"), "auto_crop": "true"}
    response = client.post(VERIFY, data, format="multipart")
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert body["decision"] in ("genuine", "inconclusive", "forged")
    (used,) = body["auto_crops"]
    assert used["field"] == "questioned"
    left, top, right, bottom = used["box"]
    assert SIGNATURE_BOX[0] <= left < right <= SIGNATURE_BOX[2] and SIGNATURE_BOX[1] <= top < bottom <= SIGNATURE_BOX[3]
    assert used["crop"] == ",".join(str(v) for v in used["box"])
    assert 0.0 < used["confidence"] <= 1.0
    assert used["thumbnail"].startswith("data:image/png;base64,")
    # the answer's rates were measured on scans, not on signatures cut from a page: it says so
    assert {"field": "questioned", **sigml.locate.CUT_FROM_A_PAGE} in body["warnings"]


def test_a_forged_score_on_a_signature_cut_from_a_page_is_answered_inconclusive(client, monkeypatch):
    import sigml.decision

    monkeypatch.setattr(sigml.decision, "decide", lambda score, band: "forged")  # the band would say forged
    page = client.post(VERIFY, {"reference": upload(png(1)), "questioned": upload(letter_page(), "letter.png"),
                                "auto_crop": "true"}, format="multipart").json()
    assert (page["decision"], page["flags"]) == ("inconclusive", [sigml.decision.PAGE_FLAG])
    scans = client.post(VERIFY, {"reference": upload(png(1)), "questioned": upload(png(2)), "auto_crop": "true"},
                        format="multipart").json()
    assert (scans["decision"], scans["flags"]) == ("forged", [])  # scans keep their measured answer
    box = page["auto_crops"][0]["crop"]
    by_hand = client.post(VERIFY, {"reference": upload(png(1)), "questioned": upload(letter_page(), "letter.png"),
                                   "questioned_crop": box}, format="multipart").json()
    assert (by_hand["decision"], by_hand["flags"]) == ("inconclusive", [sigml.decision.PAGE_FLAG])
    assert any(w["code"] == "cut_from_a_page" for w in by_hand["warnings"])


def test_the_same_page_without_auto_crop_is_refused_with_the_same_box_suggested(client):
    refused = client.post(VERIFY, {"reference": upload(png(1)), "questioned": upload(letter_page())}, format="multipart")
    assert refused.status_code == 422
    suggested = error_of(refused)["details"]["suggested_crops"][0]
    auto = client.post(VERIFY, {"reference": upload(png(1)), "questioned": upload(letter_page()), "auto_crop": "true"},
                       format="multipart")
    assert auto.json()["auto_crops"][0]["box"] == suggested["box"]
    by_hand = client.post(VERIFY, {"reference": upload(png(1)), "questioned": upload(letter_page()),
                                   "questioned_crop": suggested["crop"]}, format="multipart")
    assert by_hand.json()["score"] == auto.json()["score"]  # the same box judged: the same answer
    assert by_hand.json()["auto_crops"] == []


def test_a_signature_crop_is_judged_whole_with_auto_crop(client):
    data = {"reference": upload(png(9)), "questioned": upload(png(9)), "auto_crop": "true"}
    body = client.post(VERIFY, data, format="multipart").json()
    assert body["auto_crops"] == []
    assert "identical_to_reference" in body["flags"]  # the same bytes judged whole: still a copy
    assert all(w["code"] != "cut_from_a_page" for w in body["warnings"])


def test_a_page_where_no_box_passes_is_still_refused_with_auto_crop(client, monkeypatch):
    real_look = sigml.locate.look
    monkeypatch.setattr(sigml.locate, "look", lambda *a, **k: dataclasses.replace(real_look(*a, **k), found=()))
    data = {"reference": upload(png(9)), "questioned": upload(letter_page()), "auto_crop": "true"}
    response = client.post(VERIFY, data, format="multipart")
    assert response.status_code == 422
    assert error_of(response)["code"] == "not_a_signature"
    assert error_of(response)["details"]["suggested_crops"] == []


def test_auto_crop_tries_the_next_box_when_the_best_is_not_a_signature(client, monkeypatch):
    text_band = LocatedSignature(box=(40, 40, 820, 900), confidence=0.9)  # the letter's twelve lines of writing
    signature = LocatedSignature(box=(480, 960, 730, 1060), confidence=0.6)
    real_look = sigml.locate.look
    monkeypatch.setattr(sigml.locate, "look",
                        lambda *a, **k: dataclasses.replace(real_look(*a, **k), found=(text_band, signature)))
    data = {"reference": upload(png(9)), "questioned": upload(letter_page()), "auto_crop": "true"}
    body = client.post(VERIFY, data, format="multipart").json()
    assert body["auto_crops"][0]["box"] == list(signature.box)


def test_profile_verify_with_auto_crop_and_its_case_record(user_client):
    api, _ = user_client()
    profile = create_profile(api)
    add_references(api, profile["id"], [1, 2])
    response = api.post(verify_url(profile["id"]), {"questioned": upload(letter_page()), "auto_crop": "true"},
                        format="multipart")
    assert response.status_code == 200, response.content[:300]
    used = response.json()["auto_crops"][0]
    record = VerificationRecord.objects.latest("id")
    assert record.details["auto_crops"] == [{k: v for k, v in used.items() if k != "thumbnail"}]


def test_references_keep_their_crop_and_the_box_auto_crop_chose(user_client):
    api, _ = user_client()
    profile = create_profile(api)
    response = api.post(references_url(profile["id"]), {
        "images": [upload(letter_page(), "letter.png"), upload(png(2), "r2.png"), upload(letter_page(4), "other.png")],
        "crops": ["", "", "470,960,740,1065"], "auto_crop": "true"}, format="multipart")
    assert response.status_code == 201, response.content[:400]
    crops = [r["crop"] for r in response.json()["results"]]
    assert crops[1] is None and crops[2] == [470, 960, 740, 1065]
    assert SIGNATURE_BOX[0] <= crops[0][0] < crops[0][2] <= SIGNATURE_BOX[2]
    stored = Reference.objects.order_by("id")
    assert [r.crop_box() for r in stored][2] == (470, 960, 740, 1065)


def test_a_reference_cut_from_a_page_keeps_the_profiles_answers_from_forged(user_client, monkeypatch):
    import sigml.decision

    api, _ = user_client()
    scans, pages = create_profile(api), create_profile(api, name="pages")
    add_references(api, scans["id"], [1, 2])
    response = api.post(references_url(pages["id"]), {
        "images": [upload(png(1), "r1.png"), upload(letter_page(), "letter.png")], "crops": ["", "470,960,740,1065"]},
        format="multipart")
    assert response.status_code == 201, response.content[:400]
    assert [r["from_a_page"] for r in response.json()["results"]] == [False, True]
    monkeypatch.setattr(sigml.decision, "decide", lambda score, band: "forged")  # the band would say forged
    on_scans = api.post(verify_url(scans["id"]), {"questioned": upload(png(3))}, format="multipart").json()
    assert (on_scans["decision"], on_scans["flags"]) == ("forged", [])
    on_pages = api.post(verify_url(pages["id"]), {"questioned": upload(png(3))}, format="multipart").json()
    assert (on_pages["decision"], on_pages["flags"]) == ("inconclusive", [sigml.decision.PAGE_FLAG])


def test_a_reference_page_without_crop_or_auto_crop_is_refused_and_nothing_is_stored(user_client):
    api, _ = user_client()
    profile = create_profile(api)
    response = api.post(references_url(profile["id"]), {"image": upload(letter_page())}, format="multipart")
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "image"
    assert not Reference.objects.exists()
    cropped = api.post(references_url(profile["id"]), {"image": upload(letter_page()), "crop": "470,960,740,1065"},
                       format="multipart")
    assert cropped.status_code == 201, cropped.content[:300]
    assert cropped.json()["results"][0]["crop"] == [470, 960, 740, 1065]


def test_reference_crops_are_checked(user_client):
    api, _ = user_client()
    profile = create_profile(api)
    more = api.post(references_url(profile["id"]), {"images": [upload(png(1))], "crops": ["", "1,2,3,4"]},
                    format="multipart")
    assert more.status_code == 400 and "crops" in error_of(more)["details"]
    bad = api.post(references_url(profile["id"]), {"images": [upload(png(1))], "crops": ["1,2,3"]}, format="multipart")
    assert bad.status_code == 400 and "crops[0]" in str(error_of(bad)["details"])
    assert not Reference.objects.exists()


def test_a_new_model_re_embeds_the_cropped_part_of_a_reference(user_client, verifier):
    api, _ = user_client()
    profile = create_profile(api)
    api.post(references_url(profile["id"]), {"image": upload(letter_page()), "crop": "470,960,740,1065"},
             format="multipart")
    enrolled = Reference.objects.get().embedding_array()
    Reference.objects.update(model_version="an-older-model", embedding=b"")  # as after a new model is shipped
    response = api.post(verify_url(profile["id"]), {"questioned": upload(png(3))}, format="multipart")
    assert response.status_code == 200, response.content[:300]
    again = Reference.objects.get()
    assert again.model_version == verifier.model_version
    assert np.allclose(again.embedding_array(), enrolled, atol=1e-5)  # the crop's embedding, not the whole page's
