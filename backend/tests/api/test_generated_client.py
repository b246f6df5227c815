"""A client generated from GET /api/schema/ with openapi-python-client verifies a pair against a live server.

The schema is fetched over HTTP from pytest-django's live server, the client package is generated into a tmp folder
and imported, and its `verify_create` sends two synthetic signature PNGs as multipart. The generator drops responses
of media types it has no reader for (`image/*`, `image/png`, the image endpoints'), so the config maps them to
`application/octet-stream` (bytes), its documented `content_type_overrides`; the schema itself stays truthful.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from types import ModuleType

import pytest

from api_helpers import png

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("openapi_python_client") is None,
    reason="openapi-python-client is not installed (requirements-dev.txt; `make install-dev`)",
)

PACKAGE = "sigver_generated_client"
GENERATOR_CONFIG = {
    "post_hooks": [],  # no ruff formatting: the generated code is only imported
    "content_type_overrides": {"image/*": "application/octet-stream", "image/png": "application/octet-stream"},
}


@pytest.fixture(scope="module")
def generated(live_server, django_db_blocker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated client package, imported from a tmp folder; its modules leave sys.modules afterwards."""
    folder = tmp_path_factory.mktemp("generated_client")
    # a module fixture runs outside any test's database access, and Django checks its connection on each request
    with django_db_blocker.unblock(), urllib.request.urlopen(f"{live_server.url}/api/schema/?format=json",
                                                             timeout=60) as response:
        schema_json = json.load(response)  # a non-2xx status raises here
    schema = folder / "schema.json"
    schema.write_text(json.dumps(schema_json))
    config = folder / "config.json"
    config.write_text(json.dumps(GENERATOR_CONFIG))
    result = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(schema), "--config", str(config),
         "--output-path", str(folder / PACKAGE), "--meta", "none"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # every operation and response is generated: a warning means the generator dropped part of the schema
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _pair(reference: bytes, questioned: bytes):
    models = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")
    return models.VerifyInputRequest(
        reference=types.File(payload=io.BytesIO(reference), file_name="reference.png", mime_type="image/png"),
        questioned=types.File(payload=io.BytesIO(questioned), file_name="questioned.png", mime_type="image/png"),
    )


def test_the_generated_client_verifies_a_pair(generated, live_server, make_user, verifier):
    verify_create = importlib.import_module(f"{PACKAGE}.api.verify.verify_create")
    models = importlib.import_module(f"{PACKAGE}.models")
    _, token = make_user("generated")
    # the schema's tokenAuth: `Authorization: Token <token>`
    with generated.AuthenticatedClient(base_url=live_server.url, token=token, prefix="Token", timeout=60) as api:
        response = verify_create.sync_detailed(client=api, body=_pair(png(1), png(2)))
    assert response.status_code == 200, response.content
    answer = response.parsed
    assert isinstance(answer, models.VerifyOutput), response.content
    assert answer.decision.value in {"genuine", "inconclusive", "forged"}
    assert isinstance(answer.score, float)
    expected = verifier.verify(png(1), png(2))
    assert answer.score == pytest.approx(expected.distance, rel=1e-4, abs=1e-5)
    assert answer.decision.value == expected.decision and answer.score_method.value == "pairwise"


def test_the_generated_client_parses_a_corrupt_upload_as_the_error_shape(generated, live_server):
    verify_create = importlib.import_module(f"{PACKAGE}.api.verify.verify_create")
    models = importlib.import_module(f"{PACKAGE}.models")
    # verify works without a token too; the generator types the client as AuthenticatedClient because the operation
    # lists tokenAuth (beside the empty, anonymous requirement), but a plain Client sends the same request
    with generated.Client(base_url=live_server.url, timeout=60) as api:
        response = verify_create.sync_detailed(client=api, body=_pair(png(1), b"not an image"))
    assert response.status_code == 415, response.content
    assert isinstance(response.parsed, models.Error), response.content
    error = response.parsed.error
    assert error.code == "invalid_image" and error.message
    assert error.details.to_dict() == {"field": "questioned"}
