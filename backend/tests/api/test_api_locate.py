"""POST /api/locate/: the boxes of the signatures on a page; a page sent to verify is refused with the boxes as
suggested crops, which a client can send back as the crop."""

from __future__ import annotations

from django.urls import reverse

from api_helpers import error_of, letter_page, png, upload
from sigml.testing import image_bytes, signature_image

LOCATE = reverse("api:locate")
VERIFY = reverse("api:verify")


def test_locate_answers_boxes_inside_the_image_with_their_crop_values(client):
    response = client.post(LOCATE, {"image": upload(letter_page())}, format="multipart")
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert body["image_size"] == [850, 1100]
    assert body["count"] == len(body["signatures"])
    assert "does not mean there is no signature" in body["note"]
    for found in body["signatures"]:
        left, top, right, bottom = found["box"]
        assert 0 <= left < right <= 850 and 0 <= top < bottom <= 1100
        assert found["crop"] == ",".join(str(v) for v in found["box"])
        assert 0.0 <= found["confidence"] <= 1.0


def test_locate_refuses_what_is_not_an_image(client):
    response = client.post(LOCATE, {"image": upload(b"not an image")}, format="multipart")
    assert response.status_code == 415
    assert error_of(response)["details"]["field"] == "image"


def test_locate_needs_the_image_field(client):
    response = client.post(LOCATE, {}, format="multipart")
    assert response.status_code == 400


def test_a_refused_page_carries_suggested_crops_that_verify_accepts(client):
    data = {"reference": upload(png(1)), "questioned": upload(letter_page())}
    response = client.post(VERIFY, data, format="multipart")
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "not_a_signature"
    crops = error["details"]["suggested_crops"]
    assert isinstance(crops, list) and len(crops) <= 3
    for crop in crops:  # each is a crop value the endpoint takes back (it may still hold text: then 422 again)
        again = client.post(VERIFY, {"reference": upload(png(1)), "questioned": upload(letter_page()),
                                     "questioned_crop": crop["crop"]}, format="multipart")
        assert again.status_code in (200, 422), again.content[:300]


def test_a_small_signature_gets_no_suggested_crops(client):
    tiny = image_bytes(signature_image(9, size=(300, 120), paper=245).resize((40, 20)))
    response = client.post(VERIFY, {"reference": upload(png(1)), "questioned": upload(tiny)}, format="multipart")
    assert error_of(response)["code"] == "too_small"
    assert "suggested_crops" not in error_of(response)["details"]
