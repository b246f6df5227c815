"""The API's front door: `GET /api/` answers with an index of its links (so the URL `make run` prints works)."""

from __future__ import annotations

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularRedocView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

# (key in the index, URL name in the `api` namespace, what it is); URLs with parameters are listed as templates
INDEX_LINKS: list[tuple[str, str, str]] = [
    ("verify", "api:verify", "POST reference + questioned (multipart): decision, score, score_method"),
    ("locate", "api:locate", "POST image (multipart): the boxes of the handwritten signatures on a page"),
    ("health", "api:health", "GET liveness and readiness"),
    ("model", "api:model", "GET the model card"),
    ("datasets", "api:dataset-list", "GET the datasets under SIGVER_DATA_DIR"),
    ("profiles", "api:profile-list", "GET/POST your profiles (token)"),
    ("records", "api:record-list", "GET the case records of your verifications (token)"),
    ("records_export", "api:record-export", "GET the same case records as CSV (token; the list's filters)"),
    ("register", "api:register", "POST username + password: an account and its token"),
    ("token", "api:token", "POST username + password: sign in, a new token (it ends after SIGVER_TOKEN_TTL_HOURS)"),
    ("sign_out", "api:sign-out", "POST (token): sign out, the token ends; everywhere=true: all your tokens"),
    ("password", "api:password", "POST current_password + new_password (token): all your tokens end, a new one"),
    ("account", "api:account", "DELETE your account, tokens, profiles, references and their images (token); your "
                               "case records stay, anonymised: decision, scores, hashes, model and time, without "
                               "user, address, profile name or images"),
    ("schema", "api:schema", "GET the OpenAPI 3 schema"),
    ("docs", "api:docs", "Swagger UI (works offline)"),
    ("redoc", "api:redoc", "ReDoc (works offline)"),
]


class ApiIndexApi(APIView):
    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="name, version, links and upload limits")},
                   summary="Index of the API's links")
    def get(self, request: Request) -> Response:
        links = {}
        for key, name, description in INDEX_LINKS:
            try:
                links[key] = {"href": request.build_absolute_uri(reverse(name)), "description": description}
            except NoReverseMatch:  # an endpoint that is not installed
                continue
        return Response({
            "name": settings.SPECTACULAR_SETTINGS["TITLE"],
            "version": settings.SPECTACULAR_SETTINGS["VERSION"],
            "links": links,
            # what clients (the interface's upload widgets) should tell their users before they upload
            "limits": {
                "max_upload_bytes": settings.SIGVER_MAX_UPLOAD_BYTES,
                "max_request_bytes": settings.SIGVER_MAX_REQUEST_BYTES,
                "max_references_per_profile": settings.SIGVER_MAX_REFERENCES_PER_PROFILE,
            },
        })


class RedocView(SpectacularRedocView):
    """ReDoc from drf-spectacular-sidecar's static files, without the web fonts its template links to."""

    template_name = "api/redoc.html"
