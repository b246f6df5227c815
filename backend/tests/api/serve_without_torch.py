"""Run by test_serving_without_torch.py in a fresh interpreter: the API on an ONNX model with torch made
unimportable, every endpoint called through the test client; prints one JSON line of what each answered and
whether anything tried to import torch.

    python serve_without_torch.py MODEL.safetensors DATA_DIR IMAGES_DIR WORK_DIR
"""

from __future__ import annotations

import importlib.abc
import json
import os
import sys
from pathlib import Path

BLOCKED = ("torch", "torchvision")
attempts: list[str] = []


class NoTorch(importlib.abc.MetaPathFinder):
    """Any import of torch or torchvision is recorded and fails, as on a serving install without them."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: the API must serve without torch)")
        return None


def main(model: str, data_dir: str, images_dir: str, work: str) -> dict:
    sys.meta_path.insert(0, NoTorch())
    backend = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(backend))
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_SECRET_KEY": "serving-test-only-not-a-secret",
        "DJANGO_DEBUG": "0", "SIGVER_LOAD_MODEL": "1", "SIGVER_RUNTIME": "auto", "SIGVER_MODEL_PATH": model,
        "SIGVER_DATA_DIR": data_dir, "SIGVER_SQLITE_PATH": str(Path(work) / "db.sqlite3"), "SIGVER_TORCH_THREADS": "1",
    })
    import django

    django.setup()  # AppConfig.ready loads the model (SIGVER_LOAD_MODEL=1), as a server does
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import connection
    from django.test.utils import setup_test_environment
    from rest_framework.test import APIClient

    setup_test_environment()
    connection.creation.create_test_db(verbosity=0)
    settings.MEDIA_ROOT = str(Path(work) / "media")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        k: "100000/min" for k in settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})}}

    from signatures.model_loader import verifier_get

    images = sorted(Path(images_dir).glob("*.png"))

    def up(i: int) -> SimpleUploadedFile:
        return SimpleUploadedFile(images[i].name, images[i].read_bytes(), "image/png")

    api = APIClient()
    status: dict[str, int] = {}

    def call(name: str, method: str, url: str, **kwargs):
        response = getattr(api, method)(url, **kwargs)
        status[name] = response.status_code
        return response

    call("index", "get", "/api/")
    call("health", "get", "/api/health/")
    call("model", "get", "/api/model/")
    call("model-plot", "get", "/api/model/plots/roc.png")
    verify = call("verify", "post", "/api/verify/", data={"reference": up(0), "questioned": up(1), "previews": "true",
                                                           "explain": "true"}, format="multipart")
    call("verify-same", "post", "/api/verify/", data={"image_1": up(0), "image_2": up(0)}, format="multipart")
    token = call("register", "post", "/api/auth/register/",
                 data={"username": "clerk1", "password": "correct horse battery"}).json()["token"]
    call("token", "post", "/api/auth/token/", data={"username": "clerk1", "password": "correct horse battery"})
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    profile = call("profile-create", "post", "/api/profiles/", data={"name": "Ada"}).json()["id"]
    call("profile-list", "get", "/api/profiles/")
    call("profile-detail", "get", f"/api/profiles/{profile}/")
    call("profile-update", "patch", f"/api/profiles/{profile}/", data={"name": "Ada L."})
    refs = call("references-create", "post", f"/api/profiles/{profile}/references/",
                data={"images": [up(2), up(3), up(4)]}, format="multipart").json()
    call("references-list", "get", f"/api/profiles/{profile}/references/")
    ref_id = (refs.get("references") or refs.get("results") or refs)[0]["id"] if not isinstance(refs, list) else refs[0]["id"]
    call("reference-detail", "get", f"/api/profiles/{profile}/references/{ref_id}/")
    call("reference-image", "get", f"/api/profiles/{profile}/references/{ref_id}/image/")
    profile_verify = call("profile-verify", "post", f"/api/profiles/{profile}/verify/", data={"questioned": up(5)},
                          format="multipart")
    call("profile-verify-copy", "post", f"/api/profiles/{profile}/verify/", data={"questioned": up(2)},
         format="multipart")
    records = call("records", "get", "/api/records/").json()
    first = (records.get("results") or records.get("records") or [{}])[0] if isinstance(records, dict) else records[0]
    call("record-detail", "get", f"/api/records/{first.get('id', 1)}/")
    export = call("records-export", "get", "/api/records/export/")
    b"".join(export.streaming_content) if export.streaming else export.content
    call("datasets", "get", "/api/datasets/")
    call("dataset-detail", "get", "/api/datasets/SYNTH/")
    call("dataset-writer", "get", "/api/datasets/SYNTH/writers/w1/")
    call("dataset-image", "get", "/api/datasets/SYNTH/images/w1/genuine/w1_1.png")
    call("dataset-pairs", "get", "/api/datasets/SYNTH/pairs/?limit=4")
    pairs = call("dataset-pairs-verify", "post", "/api/datasets/SYNTH/pairs/verify/", data={"limit": 4})
    call("schema", "get", "/api/schema/")
    call("docs", "get", "/api/docs/")
    call("redoc", "get", "/api/redoc/")
    call("reference-delete", "delete", f"/api/profiles/{profile}/references/{ref_id}/")
    call("profile-delete", "delete", f"/api/profiles/{profile}/")
    new_token = call("password", "post", "/api/auth/password/", data={
        "current_password": "correct horse battery", "new_password": "another horse battery staple"}).json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {new_token}")
    call("account-delete", "delete", "/api/auth/account/")
    api.credentials()
    call("register-2", "post", "/api/auth/register/", data={"username": "clerk2", "password": "correct horse battery"})
    token = call("token-2", "post", "/api/auth/token/",
                 data={"username": "clerk2", "password": "correct horse battery"}).json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    call("sign-out", "post", "/api/auth/sign-out/")
    call("admin", "get", "/admin/login/")
    return {
        "status": status, "attempts": attempts, "torch_loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
        "runtime": verifier_get().runtime, "verify": verify.json(), "profile_verify": profile_verify.json(),
        "pairs": pairs.json(),
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:5]), default=str))
