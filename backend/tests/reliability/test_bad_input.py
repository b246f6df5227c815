"""Hostile uploads against the three upload endpoints (verify, reference upload, profile verify):
each gets the documented JSON error (or a 200/201 where the input is a valid image), never a 500;
one bad file stores nothing; the process memory stays bounded while the corpus goes through.

Also: wrongly shaped requests (field names, JSON, forms, broken multipart) and path traversal in
every URL that takes a path or a name (dataset images incl. encoded variants, writers, plots)."""

from __future__ import annotations

import gc
import resource
from pathlib import Path

import psutil
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from api_helpers import UPLOAD_FIELD, error_of, png, upload_send
from hostile_inputs import OK, corpus
from signatures.models import Reference

ERROR_STATUSES = {400, 401, 403, 404, 405, 413, 415, 429, 503}
RSS_GROWTH_LIMIT_MB = 150  # after the whole corpus (images of a few MB each are decoded and dropped)
PEAK_GROWTH_LIMIT_MB = 400  # a decoded 50000x50000 bomb alone would take 2.5 GB


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux




@pytest.mark.parametrize("endpoint", ["verify", "references", "profile-verify"])
def test_hostile_upload_corpus(endpoint, enrolled, settings):
    api, profile_id = enrolled
    cases = corpus(settings.SIGVER_MAX_UPLOAD_BYTES)
    assert len(cases) >= 30
    ok_status = 201 if endpoint == "references" else 200
    upload_send(endpoint, api, profile_id, SimpleUploadedFile("warm.png", png(5), "image/png"))  # warm-up
    gc.collect()
    rss_before, peak_before = rss_mb(), peak_mb()

    problems = []
    for case in cases:
        if endpoint == "references":  # most cases are one signature in other encodings: each would be a duplicate
            Reference.objects.filter(profile_id=profile_id).delete()
        before = Reference.objects.count()
        upload = SimpleUploadedFile(case.filename, case.data, case.content_type)
        response = upload_send(endpoint, api, profile_id, upload)
        allowed = {ok_status if s == OK else s for s in case.expect}
        status = response.status_code
        if status not in allowed:
            problems.append(f"{case.name}: {status} not in {sorted(allowed)}: {response.content[:300]!r}")
            continue
        created = Reference.objects.count() - before
        if status >= 400:
            error = error_of(response)
            if status not in ERROR_STATUSES:
                problems.append(f"{case.name}: undocumented status {status}")
            if case.code and error["code"] != case.code:
                problems.append(f"{case.name}: code {error['code']!r}, expected {case.code!r}")
            if status in (413, 415) or error["code"] == "blank_image":
                if error["details"].get("field") != UPLOAD_FIELD[endpoint]:
                    problems.append(f"{case.name}: details.field is {error['details'].get('field')!r}")
            if created:
                problems.append(f"{case.name}: a refused upload stored {created} reference(s)")
        else:
            body = response.json()
            if endpoint == "references":
                if created != 1:
                    problems.append(f"{case.name}: 201 but {created} references stored")
                name = Reference.objects.get(pk=body["results"][0]["id"]).image.name
                if not (name.startswith("references/") and Path(name).suffix in {".png", ".jpg", ".tif", ".gif", ".webp", ".bmp"}
                        and len(Path(name).stem) == 32):
                    problems.append(f"{case.name}: stored under {name!r}, not a generated name")
            else:
                if not (body["decision"] in ("genuine", "inconclusive", "forged")
                        and body["score"] == body["score"]):  # NaN != NaN
                    problems.append(f"{case.name}: non-finite score {body}")
        del response
    assert not problems, "\n".join(problems)

    gc.collect()
    growth, peak_growth = rss_mb() - rss_before, peak_mb() - peak_before
    print(f"{endpoint}: {len(cases)} hostile uploads; RSS {rss_before:.0f} -> {rss_mb():.0f} MB "
          f"(+{growth:.0f}), peak +{peak_growth:.0f} MB")
    assert growth < RSS_GROWTH_LIMIT_MB, f"RSS grew by {growth:.0f} MB over the corpus"
    assert peak_growth < PEAK_GROWTH_LIMIT_MB, f"peak RSS grew by {peak_growth:.0f} MB (a bomb was decoded?)"


def test_a_bad_file_among_good_ones_stores_nothing(enrolled, settings):
    api, profile_id = enrolled
    for case in corpus(settings.SIGVER_MAX_UPLOAD_BYTES):
        if OK in case.expect:
            continue
        files = [SimpleUploadedFile("g1.png", png(31), "image/png"), SimpleUploadedFile(case.filename, case.data, case.content_type),
                 SimpleUploadedFile("g2.png", png(32), "image/png")]
        before = Reference.objects.count()
        media_before = sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())
        response = api.post(f"/api/profiles/{profile_id}/references/", {"images": files}, format="multipart")
        assert response.status_code in set(case.expect), (case.name, response.content[:200])
        assert error_of(response)["details"].get("field") in (None, "images[1]"), case.name
        assert Reference.objects.count() == before, case.name
        assert sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()) == media_before, case.name


# --- wrongly shaped requests ------------------------------------------------------------------------

SHAPES = {
    "wrong field names": ({"file": ("a.png", "png"), "photo": ("b.png", "png")}, "multipart", (400,), "missing_field"),
    "no files at all, only a text field": ({"note": "hello"}, "multipart", (400,), "missing_field"),
    "a text value where the file goes": ({"reference": "x", "questioned": "y", "image": "z"}, "multipart", (400,), None),
    "JSON instead of multipart": ({"reference": "aGVsbG8=", "questioned": "aGVsbG8=", "image": "aGVsbG8="}, "json", (415,), "unsupported_media_type"),
    "urlencoded form": ({"reference": "a", "questioned": "b"}, "form", (400,), None),
    "raw PNG body": (None, "raw-png", (415,), "unsupported_media_type"),
    "multipart without a boundary": (None, "no-boundary", (400, 415), None),
    "multipart cut in the middle": (None, "cut", (400,), None),
    "an invalid boolean option": ({"previews": "maybe"}, "multipart+files", (400,), None),
}


def _shaped(api: APIClient, url: str, shape: str, fields: dict | None):
    if shape == "json":
        return api.post(url, fields, format="json")
    if shape == "form":
        return api.generic("POST", url, "&".join(f"{k}={v}" for k, v in fields.items()),
                           content_type="application/x-www-form-urlencoded")
    if shape == "raw-png":
        return api.generic("POST", url, png(1), content_type="image/png")
    if shape == "no-boundary":
        return api.generic("POST", url, b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n",
                           content_type="multipart/form-data")
    if shape == "cut":
        body = (b"--B\r\nContent-Disposition: form-data; name=\"questioned\"; filename=\"q.png\"\r\n"
                b"Content-Type: image/png\r\n\r\n" + png(1)[:100])
        return api.generic("POST", url, body, content_type="multipart/form-data; boundary=B")
    data = {}
    for key, value in fields.items():
        data[key] = SimpleUploadedFile(value[0], png(1), "image/png") if isinstance(value, tuple) else value
    if shape == "multipart+files":
        for key in ("reference", "questioned", "image"):
            data[key] = SimpleUploadedFile(f"{key}.png", png(2), "image/png")
    return api.post(url, data, format="multipart")


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("endpoint", ["verify", "references", "profile-verify"])
def test_wrongly_shaped_requests(endpoint, shape, enrolled):
    api, profile_id = enrolled
    url = {"verify": "/api/verify/", "references": f"/api/profiles/{profile_id}/references/",
           "profile-verify": f"/api/profiles/{profile_id}/verify/"}[endpoint]
    fields, kind, statuses, code = SHAPES[shape]
    if endpoint != "verify" and shape == "an invalid boolean option":
        pytest.skip("only /api/verify/ takes options")
    before = Reference.objects.count()
    response = _shaped(api, url, kind, fields)
    assert response.status_code in statuses, response.content[:300]
    error = error_of(response)
    if code:
        assert error["code"] == code
    assert Reference.objects.count() == before


# --- path traversal in URLs that take a path or a name ---------------------------------------------

TRAVERSALS = [
    "../secret.png", "../../secret.png", "1/genuine/../../../secret.png", "..%2fsecret.png", "..%2f..%2fsecret.png",
    "%2e%2e/%2e%2e/secret.png", "%2e%2e%2f%2e%2e%2fsecret.png", "%252e%252e%252fsecret.png", "..%252f..%252fsecret.png",
    "..\\..\\secret.png", "..%5c..%5csecret.png", "/etc/passwd", "%2fetc%2fpasswd", "//etc/passwd",
    "1/genuine/1_1.png%00.txt", "1/genuine/notes.txt", "%c0%ae%c0%ae/secret.png", "\uff0e\uff0e/secret.png",
    "....//....//secret.png", "1/genuine/./../../..//secret.png", "x" * 5000,
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_dataset_image_path_traversal(client, dataset_dirs, path):
    secret = dataset_dirs["secret"].read_bytes()
    for prefix in ("/api/datasets/SYNTH/images/", "/api/datasets/LINKED/images/"):
        response = client.get(prefix + path)
        assert response.status_code in (400, 404), (prefix + path, response.status_code)
        assert error_of(response)["code"] in ("not_found", "invalid")
        assert secret not in b"".join(getattr(response, "streaming_content", [response.content]))


@pytest.mark.parametrize("url", [
    "/api/datasets/..%2f..%2fdata/", "/api/datasets/%2e%2e/", "/api/datasets/../secret.png",
    "/api/datasets/SYNTH/writers/..%2f..%2f/", "/api/datasets/SYNTH/writers/%2e%2e/",
    "/api/datasets/%2e%2e/images/secret.png", "/api/datasets/..%252f/images/secret.png",
    "/api/datasets/SYNTH/pairs/?split=..%2f..%2f", "/api/model/plots/..%2fsecret_plot.png",
    "/api/model/plots/%2e%2e%2fsecret_plot.png", "/api/model/plots/..%252fsecret_plot.png",
    "/api/datasets/\u0445\u0443\u0434\u043e\u0436\u043d\u0438\u043a/", "/api/datasets/" + "n" * 3000 + "/",
])
def test_names_in_urls_cannot_escape(client, dataset_dirs, url):
    response = client.get(url)
    assert response.status_code in (400, 404), (url, response.status_code)
    error_of(response)
    assert dataset_dirs["secret"].read_bytes() not in response.content
    assert (dataset_dirs["base"] / "secret_plot.png").read_bytes() not in b"".join(
        getattr(response, "streaming_content", [response.content]))


def test_unicode_and_very_long_profile_names(enrolled):
    api, _ = enrolled
    for name, status in (("Zoë 山田 \u202eevil", 201), ("\x00nul", 400), ("n" * 200, 201), ("n" * 201, 400),
                         ("", 400), ("<script>alert(1)</script>", 201)):
        response = api.post("/api/profiles/", {"name": name, "external_id": "\u00e9" * 10 + name[:3]}, format="json")
        assert response.status_code == status, (name[:20], response.content[:200])
        if status == 201:
            assert response.json()["name"] == name
        else:
            error_of(response)
