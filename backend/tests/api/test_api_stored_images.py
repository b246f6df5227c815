"""What is kept with a stored reference (issue 29, findings 2, 3, 8): the copy check compares the fingerprint kept at
enrolment and never decodes a stored image (old references get theirs once, lazily or by `manage.py
reference_fingerprints`); deleting a user in the admin or the ORM deletes their reference files; a phone's
multi-picture JPEG (Pillow's MPO) is accepted as a JPEG."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from api_helpers import error_of, png, upload
from signatures import services
from signatures.models import Reference
from sigml.testing import image_bytes, signature_image
from test_api_profiles import api, create_profile, references_url  # noqa: F401  (api: the fixture)


def verify_url(pid: int) -> str:
    return reverse("api:profile-verify", kwargs={"profile_id": pid})


@pytest.fixture
def no_stored_image_decoded(monkeypatch):
    def refuse(**kwargs):
        raise AssertionError("a stored reference image was decoded for the copy check")

    monkeypatch.setattr(services, "_reference_tensor", refuse)


def test_the_copy_check_never_decodes_a_stored_image(api, verifier, monkeypatch, no_stored_image_decoded):
    monkeypatch.setattr(verifier.card, "copy_threshold", None)
    monkeypatch.setattr(verifier.card, "copy_pixel_threshold", 0.3)
    profile = create_profile(api)
    originals = [signature_image(s) for s in (21, 22, 23)]
    created = api.post(references_url(profile["id"]), {"images": [upload(image_bytes(o), f"r{i}.png")
                                                                  for i, o in enumerate(originals)]},
                       format="multipart").json()["results"]
    assert all(len(bytes(r.fingerprint)) > 0 for r in Reference.objects.all())
    jpeg = image_bytes(originals[2], "JPEG", quality=60)
    refused = api.post(references_url(profile["id"]), {"image": upload(jpeg, "scan.jpg", "image/jpeg")},
                       format="multipart")
    assert refused.status_code == 409 and error_of(refused)["details"]["duplicate_of"] == created[2]["id"]
    body = api.post(verify_url(profile["id"]), {"questioned": upload(jpeg, "q.jpg", "image/jpeg")},
                    format="multipart").json()
    assert body["flags"] == ["identical_to_reference"] and body["copy_of_reference"] == created[2]["id"]
    assert api.post(verify_url(profile["id"]), {"questioned": upload(png(24))}, format="multipart").json()["flags"] == []


def test_an_old_reference_gets_its_fingerprint_once(api, verifier, monkeypatch):
    profile = create_profile(api)
    api.post(references_url(profile["id"]), {"images": [upload(png(s), f"r{s}.png") for s in (31, 32)]},
             format="multipart")
    Reference.objects.update(fingerprint=b"")  # enrolled before fingerprints were kept
    decoded = []
    original = services._reference_tensor
    monkeypatch.setattr(services, "_reference_tensor", lambda **kw: decoded.append(kw["reference"].pk) or original(**kw))
    for _ in range(2):
        assert api.post(verify_url(profile["id"]), {"questioned": upload(png(33))}, format="multipart").status_code == 200
    assert sorted(decoded) == sorted(Reference.objects.values_list("pk", flat=True))  # each once, then kept
    Reference.objects.update(fingerprint=b"")
    call_command("reference_fingerprints")
    assert all(len(bytes(r.fingerprint)) > 0 for r in Reference.objects.all())


@pytest.mark.django_db(transaction=True)
def test_deleting_a_user_in_the_orm_deletes_their_reference_files(user_client, settings):
    api, _ = user_client("leaving")
    profile = create_profile(api)
    assert api.post(references_url(profile["id"]), {"images": [upload(png(s), f"r{s}.png") for s in (41, 42)]},
                    format="multipart").status_code == 201
    files = [Path(settings.MEDIA_ROOT) / r.image.name for r in Reference.objects.all()]
    assert len(files) == 2 and all(f.exists() for f in files)
    get_user_model().objects.get(username="leaving").delete()  # what the admin's delete does
    assert Reference.objects.count() == 0 and not any(f.exists() for f in files)


def test_a_multi_picture_jpeg_from_a_phone_is_accepted(api):
    picture = signature_image(51).convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format="MPO", save_all=True, append_images=[picture.rotate(90)])
    profile = create_profile(api)
    response = api.post(references_url(profile["id"]), {"image": upload(buffer.getvalue(), "phone.jpg", "image/jpeg")},
                        format="multipart")
    assert response.status_code == 201, response.content
    assert Reference.objects.get().image.name.endswith(".jpg")
    body = api.post(verify_url(profile["id"]), {"questioned": upload(buffer.getvalue(), "q.jpg", "image/jpeg")},
                    format="multipart").json()
    assert body["flags"] == ["identical_to_reference"]  # the same bytes
    pair = api.post(reverse("api:verify"), {"reference": upload(buffer.getvalue(), "a.jpg", "image/jpeg"),
                                            "questioned": upload(png(52))}, format="multipart")
    assert pair.status_code == 200
