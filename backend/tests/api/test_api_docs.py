"""`/api/` answers with an index of links; Swagger UI and ReDoc load their JS/CSS from this server
(drf-spectacular-sidecar through WhiteNoise, DEBUG off as in production), never from a CDN."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

CDN_HOSTS = ("cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com", "fonts.googleapis.com")


def test_api_root_is_an_index_of_links(client):
    response = client.get("/api/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["name"] == "Signature verification API"
    links = body["links"]
    assert {"verify", "health", "model", "datasets", "profiles", "records", "schema", "docs", "redoc"} <= set(links)
    assert links["health"]["href"] == "http://testserver/api/health/"
    assert body["limits"]["max_upload_bytes"] == 10 * 1024 * 1024  # the interface shows it on its upload widgets
    for key in ("health", "model", "datasets", "schema", "docs", "redoc"):  # GET endpoints open to anyone
        href = links[key]["href"].removeprefix("http://testserver")
        assert client.get(href).status_code in (200, 503), key  # 503: model not loaded is still an answer


def _local_assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', html)


@pytest.mark.parametrize("name, asset", [("api:docs", "swagger-ui-bundle.js"), ("api:redoc", "redoc.standalone.js")])
def test_docs_pages_use_local_static_files_only(client, name, asset):
    response = client.get(reverse(name))
    assert response.status_code == 200
    html = response.content.decode()
    assert not any(host in html for host in CDN_HOSTS)
    assets = _local_assets(html)
    assert any(a.endswith(asset) for a in assets), assets
    for path in assets:
        served = client.get(path)
        assert served.status_code == 200, path
        body = b"".join(served.streaming_content) if served.streaming else served.content
        assert len(body) > 100, path
