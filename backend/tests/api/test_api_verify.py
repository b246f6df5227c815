"""POST /api/verify/: happy paths and every kind of bad input (never a 500)."""

from __future__ import annotations

import base64
import io

import pytest
from django.urls import reverse
from PIL import Image

from api_helpers import blank_png, bomb_png, error_of, letter_page, png, upload
from sigml.testing import image_bytes, signature_image

URL = reverse("api:verify")
FIELDS = {"decision", "score", "score_method", "threshold", "decision_rates", "flags", "warnings", "model_version",
          "elapsed_ms", "auto_crops", "distance", "match"}  # distance, match: deprecated (docs/api.md "Changes")


def decode_data_uri(uri: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):])))


def test_verify_two_signatures(client, verifier):
    response = client.post(URL, {"reference": upload(png(1)), "questioned": upload(png(2))}, format="multipart")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == FIELDS
    expected = verifier.verify(png(1), png(2))
    assert body["score"] == pytest.approx(expected.distance, rel=1e-4, abs=1e-5) and body["score_method"] == "pairwise"
    assert body["distance"] == body["score"]
    assert body["threshold"] == expected.threshold
    assert body["decision"] == expected.decision and body["match"] == (body["decision"] == "genuine")
    assert body["model_version"] == verifier.model_version
    assert body["elapsed_ms"] >= 0


def test_the_same_image_twice_is_a_flagged_copy_never_genuine(client):
    response = client.post(URL, {"reference": upload(png(3)), "questioned": upload(png(3))}, format="multipart")
    body = response.json()
    assert body["score"] == pytest.approx(0.0, abs=1e-3)
    assert body["flags"] == ["identical_to_reference"]
    assert body["decision"] == "inconclusive" and body["match"] is False


def test_a_re_encoded_copy_is_flagged_below_the_cards_copy_threshold(client, verifier, monkeypatch):
    original = signature_image(5)
    jpeg = image_bytes(original, "JPEG", quality=60)  # other bytes, nearly the same pixels
    data = {"reference": upload(image_bytes(original)), "questioned": upload(jpeg, "q.jpg", "image/jpeg")}
    distance = verifier.verify(image_bytes(original), jpeg).distance
    assert distance > 1e-4  # not byte-identical: only the copy threshold can catch it
    monkeypatch.setattr(verifier.card, "copy_threshold", distance * 2)
    assert client.post(URL, data, format="multipart").json()["flags"] == ["identical_to_reference"]
    monkeypatch.setattr(verifier.card, "copy_threshold", distance / 2)
    data = {"reference": upload(image_bytes(original)), "questioned": upload(jpeg, "q.jpg", "image/jpeg")}
    assert client.post(URL, data, format="multipart").json()["flags"] == []


def test_aliases_image_1_and_image_2(client):
    response = client.post(URL, {"image_1": upload(png(1)), "image_2": upload(png(2))}, format="multipart")
    assert response.status_code == 200, response.content
    assert set(response.json()) == FIELDS


@pytest.mark.parametrize("extra", ["image_1", "image_2"])
def test_a_field_and_its_alias_together_is_a_400_not_a_500(client, extra):
    data = {"reference": upload(png(1)), "questioned": upload(png(2)), extra: upload(png(3))}
    response = client.post(URL, data, format="multipart")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "invalid"
    assert {"image_1": "reference", "image_2": "questioned"}[extra] in error["details"]


def test_aliases_can_be_mixed(client):
    response = client.post(URL, {"image_1": upload(png(1)), "questioned": upload(png(2))}, format="multipart")
    assert response.status_code == 200, response.content


def test_other_formats_are_accepted(client):
    jpeg = image_bytes(signature_image(5).convert("RGB"), "JPEG")
    tiff = image_bytes(signature_image(6), "TIFF")
    response = client.post(URL, {"reference": upload(jpeg, "a.jpg", "image/jpeg"),
                                 "questioned": upload(tiff, "b.tif", "image/tiff")}, format="multipart")
    assert response.status_code == 200, response.content


def test_previews_and_explanation(client, verifier):
    response = client.post(
        URL,
        {"reference": upload(png(1)), "questioned": upload(png(2)), "previews": "true", "explain": "true"},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    canvas = (verifier.card.preprocessing.canvas_width, verifier.card.preprocessing.canvas_height)
    for name in ("reference", "questioned"):
        assert decode_data_uri(body["previews"][name]).size == canvas
        assert decode_data_uri(body["explanation"][name]).size == canvas
    assert body["explanation"]["method"] == "occlusion"
    assert body["explanation"]["note"]


def test_previews_only_when_asked(client):
    response = client.post(URL, {"reference": upload(png(1)), "questioned": upload(png(2)), "previews": "false"},
                           format="multipart")
    assert "previews" not in response.json() and "explanation" not in response.json()


@pytest.mark.parametrize("missing", ["reference", "questioned"])
def test_missing_field(client, missing):
    data = {"reference": upload(png(1)), "questioned": upload(png(2))}
    del data[missing]
    response = client.post(URL, data, format="multipart")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "missing_field"
    assert missing in error["details"]


def test_no_body_at_all(client):
    response = client.post(URL)
    assert response.status_code in {400, 415}
    error_of(response)


def test_text_field_instead_of_file(client):
    response = client.post(URL, {"reference": "abc", "questioned": upload(png(2))}, format="multipart")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"


BAD_IMAGES = {
    "not an image": (b"%PDF-1.4 definitely not an image" * 10, 415, "invalid_image"),
    "zero bytes": (b"", 415, "invalid_image"),
    "truncated png": (png(1)[:200], 415, "invalid_image"),
    "decompression bomb": (bomb_png(), 413, "image_too_large"),
    "just over the pixel limit": (bomb_png(8000, 6000), 413, "image_too_large"),
    "blank page": (blank_png(), 400, "blank_image"),
}


@pytest.mark.parametrize("case", list(BAD_IMAGES))
@pytest.mark.parametrize("field", ["reference", "questioned"])
def test_bad_images(client, case, field):
    data, status, code = BAD_IMAGES[case]
    files = {"reference": upload(png(1)), "questioned": upload(png(2))}
    files[field] = upload(data, "upload.png")
    response = client.post(URL, files, format="multipart")
    assert response.status_code == status, response.content
    error = error_of(response)
    assert error["code"] == code
    assert error["details"].get("field") == field
    assert "Traceback" not in response.content.decode()


def test_json_instead_of_multipart(client):
    response = client.post(URL, {"reference": "a", "questioned": "b"}, format="json")
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_malformed_multipart(client):
    response = client.generic("POST", URL, b"--x\r\ngarbage", content_type="multipart/form-data; boundary=x")
    assert response.status_code in {400, 415}
    error_of(response)


def test_file_too_large(client, settings):
    settings.SIGVER_MAX_UPLOAD_BYTES = 1000
    response = client.post(URL, {"reference": upload(png(1)), "questioned": upload(png(2))}, format="multipart")
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "file_too_large" and error["details"]["limit_bytes"] == 1000


def test_request_body_too_large(client, settings):
    settings.SIGVER_MAX_REQUEST_BYTES = 2000
    response = client.post(URL, {"reference": upload(png(1)), "questioned": upload(png(2))}, format="multipart")
    assert response.status_code == 413
    assert error_of(response)["code"] == "file_too_large"


def test_request_data_too_big(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client.post(URL, {"reference": upload(png(1)), "questioned": upload(png(2)), "previews": "x" * 5000},
                           format="multipart")
    assert response.status_code == 413
    assert error_of(response)["code"] == "file_too_large"


def test_get_is_not_allowed(client):
    response = client.get(URL)
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_model_unavailable_is_503(client, settings, tmp_path):
    settings.SIGVER_MODEL_PATH = tmp_path / "missing.safetensors"
    response = client.post(URL, {"reference": upload(png(1)), "questioned": upload(png(2))}, format="multipart")
    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "model_unavailable"
    assert str(tmp_path) not in error["message"]


def test_no_slash_gets_a_json_404_with_a_hint(client):
    response = client.post(URL.rstrip("/"), {"reference": upload(png(1))}, format="multipart")
    assert response.status_code == 404
    assert URL in error_of(response)["message"]


def test_concurrent_verifications_agree_with_sequential_ones(verifier):
    """gunicorn runs several threads per worker: concurrent requests share the one Verifier."""
    from concurrent.futures import ThreadPoolExecutor

    from rest_framework.test import APIClient

    pairs = [(1, 2), (3, 4), (5, 5), (6, 1)] * 2

    def verify(pair):
        a, b = pair
        response = APIClient().post(URL, {"reference": upload(png(a)), "questioned": upload(png(b))}, format="multipart")
        assert response.status_code == 200, response.content
        return response.json()["score"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(verify, pairs))
    sequential = [verifier.verify(png(a), png(b)).distance for a, b in pairs]
    assert concurrent == pytest.approx(sequential, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("cuts, expected", [
    ((+0.01, +0.02), "genuine"),     # the score is below the genuine cut
    ((-0.02, +0.02), "inconclusive"),  # between the cuts
    ((-0.02, -0.01), "forged"),      # above the forged cut
])
def test_three_way_decision_follows_the_cards_band(client, verifier, monkeypatch, cuts, expected):
    distance = verifier.verify(png(1), png(2)).distance
    band = {"genuine_below": distance + cuts[0], "forged_above": distance + cuts[1]}
    curve = {"score": [distance - 1, distance, distance + 1], "far": [0.0, 0.07, 1.0], "frr": [1.0, 0.2, 0.0]}
    monkeypatch.setattr(verifier.card, "decision_bands", {"pairwise": band})
    monkeypatch.setattr(verifier.card, "rate_curves", {"pairwise": curve})
    body = client.post(URL, {"reference": upload(png(1)), "questioned": upload(png(2))}, format="multipart").json()
    assert body["decision"] == expected
    rates = body["decision_rates"]
    assert rates["genuine_below"] == pytest.approx(band["genuine_below"])
    assert rates["forged_above"] == pytest.approx(band["forged_above"])
    assert rates["forgeries_scoring_this_low"] == pytest.approx(0.07, abs=1e-3)
    assert rates["genuine_scoring_this_high"] == pytest.approx(0.2, abs=1e-3)


def test_a_card_without_bands_decides_at_the_eer_threshold_and_claims_no_rates(client, verifier, monkeypatch):
    monkeypatch.setattr(verifier.card, "decision_bands", {})
    monkeypatch.setattr(verifier.card, "rate_curves", {})
    body = client.post(URL, {"reference": upload(png(1)), "questioned": upload(png(2))}, format="multipart").json()
    assert body["decision"] == ("genuine" if body["score"] <= body["threshold"] else "forged")
    assert body["decision_rates"] == {"genuine_below": body["threshold"], "forged_above": body["threshold"]}


def test_a_page_is_refused_as_not_a_signature_and_a_crop_rescues_it(client):
    data = {"reference": upload(png(1)), "questioned": upload(letter_page())}
    response = client.post(URL, data, format="multipart")
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "not_a_signature" and error["details"]["field"] == "questioned"
    assert "several_text_lines" in {p["code"] for p in error["details"]["problems"]}
    assert "Crop the image" in error["message"]
    data = {"reference": upload(png(1)), "questioned": upload(letter_page()), "questioned_crop": "440,940,760,1080"}
    response = client.post(URL, data, format="multipart")
    assert response.status_code == 200, response.content
    # the crop passes the gate; the answer says it was cut from a page (and is never forged)
    assert [w["code"] for w in response.json()["warnings"]] == ["cut_from_a_page"]
    assert response.json()["decision"] != "forged"


@pytest.mark.parametrize("box, code", [("1,2,3", "invalid"), ("a,b,c,d", "invalid"), ("50,50,10,10", "invalid"),
                                       ("5000,5000,6000,6000", "invalid_crop")])
def test_a_bad_crop_box_is_a_400(client, box, code):
    data = {"reference": upload(png(1)), "questioned": upload(png(2)), "questioned_crop": box}
    response = client.post(URL, data, format="multipart")
    assert response.status_code == 400, response.content
    assert error_of(response)["code"] == code


def test_a_ruled_line_is_answered_with_a_warning(client):
    from PIL import ImageDraw

    lined = signature_image(4, size=(400, 200))
    ImageDraw.Draw(lined).line([(0, 185), (399, 185)], fill=20, width=2)
    response = client.post(URL, {"reference": upload(png(1)), "questioned": upload(image_bytes(lined))},
                           format="multipart")
    assert response.status_code == 200
    assert [(w["field"], w["code"]) for w in response.json()["warnings"]] == [("questioned", "ruled_line")]


def test_a_re_encoded_copy_is_flagged_by_the_pixel_rule(client, verifier, monkeypatch):
    monkeypatch.setattr(verifier.card, "copy_threshold", None)
    monkeypatch.setattr(verifier.card, "copy_pixel_threshold", 0.3)
    original = signature_image(8)
    data = {"reference": upload(image_bytes(original)),
            "questioned": upload(image_bytes(original, "JPEG", quality=60), "q.jpg", "image/jpeg")}
    assert client.post(URL, data, format="multipart").json()["flags"] == ["identical_to_reference"]
    data = {"reference": upload(image_bytes(original)), "questioned": upload(png(9))}
    assert client.post(URL, data, format="multipart").json()["flags"] == []


def test_a_tiny_signature_is_refused_as_too_small_with_the_minimum(client):
    tiny = image_bytes(signature_image(9, size=(300, 120), paper=245).resize((40, 20)))
    response = client.post(URL, {"reference": upload(png(1)), "questioned": upload(tiny)}, format="multipart")
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "too_small" and error["details"]["field"] == "questioned"
    assert error["details"]["minimum"] == {"width": 48, "height": 24}
    assert error["details"]["ink_box"]["width"] <= 40 and error["details"]["ink_box"]["height"] <= 20
    assert "48x24" in error["message"]
