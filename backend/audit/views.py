"""Case records over HTTP: list with filters, one record, CSV export. Token auth; a clerk sees their own
records, a staff user every record (anonymous verifications included)."""

from __future__ import annotations

import csv
from typing import Any, Iterator

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.negotiation import IgnoreClientContentNegotiation
from config.pagination import PageQuerySerializer, page_serializer, paginated_response
from config.schema import error_responses
from sigml.decision import DECISIONS

from . import selectors
from .models import KINDS, VerificationRecord



MAX_ID = 2**63 - 1  # the largest id a BigAutoField holds: a larger filter is a 400, never a database overflow


class RecordOutputSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="username", help_text='the user name, or "anonymous"')
    profile = serializers.IntegerField(source="profile_id", allow_null=True)
    has_images = serializers.SerializerMethodField()

    class Meta:
        model = VerificationRecord
        fields = ["id", "created", "kind", "user", "client_address", "profile", "profile_name", "questioned_sha256",
                  "reference_sha256", "model_version", "distance", "threshold", "similarity", "score", "verdict",
                  "decision", "elapsed_ms", "details", "has_images"]
        extra_kwargs = {
            "distance": {"help_text": "what the decision judged: the pair's distance, or the profile verification's "
                         "score"},
            "score": {"help_text": "how `distance` was computed: `pairwise`, `normalized` or `mean` (the profile "
                      "verification's `score_method`)"},
        }

    def get_has_images(self, record: VerificationRecord) -> bool:
        return bool(record.image_files)


PaginatedRecordListSerializer = page_serializer("PaginatedRecordListSerializer", RecordOutputSerializer)


class RecordFilterSerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False, help_text="YYYY-MM-DD: records of that day and later (UTC)")
    date_to = serializers.DateField(required=False, help_text="YYYY-MM-DD: records of that day and earlier (UTC)")
    profile = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID, help_text="a profile id")
    decision = serializers.ChoiceField(choices=DECISIONS, required=False)
    user = serializers.CharField(required=False, max_length=150, help_text='a user name, or "anonymous" (staff)')
    kind = serializers.ChoiceField(choices=KINDS, required=False, help_text="pair: /api/verify/; profile: a profile")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("date_from") and attrs.get("date_to") and attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"date_to": ["must not be before date_from."]})
        if "user" in attrs:
            attrs["username"] = attrs.pop("user")
        return attrs


class RecordListQuerySerializer(RecordFilterSerializer, PageQuerySerializer):
    pass


def _filters(request: Request) -> dict[str, Any]:
    query = RecordListQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return {k: v for k, v in query.validated_data.items() if k not in ("page", "page_size")}


class RecordListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="records_list", parameters=[RecordListQuerySerializer],
                   responses={200: PaginatedRecordListSerializer, **error_responses(400, 401)},
                   summary="Case records of verifications, newest first (yours; staff: everyone's)")
    def get(self, request: Request) -> Response:
        records = selectors.record_list(user=request.user, **_filters(request))
        return paginated_response(serializer_class=RecordOutputSerializer, queryset=records, request=request, view=self)


class RecordDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: RecordOutputSerializer, **error_responses(401, 404)}, summary="One case record")
    def get(self, request: Request, record_id: int) -> Response:
        return Response(RecordOutputSerializer(selectors.record_get(user=request.user, record_id=record_id)).data)


CSV_COLUMNS = ["id", "created", "kind", "user", "client_address", "profile", "profile_name", "questioned_sha256",
               "reference_sha256", "model_version", "distance", "threshold", "similarity", "score", "verdict",
               "decision", "elapsed_ms"]


def _cell(value: Any) -> str:
    """Text a spreadsheet will not run as a formula (user names and profile names are typed by users)."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_rows(records) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for record in records.iterator(chunk_size=500):
        row = {
            "id": record.pk, "created": record.created.isoformat(), "kind": record.kind, "user": record.username,
            "client_address": record.client_address, "profile": record.profile_id, "profile_name": record.profile_name,
            "questioned_sha256": record.questioned_sha256, "reference_sha256": record.reference_sha256,
            "model_version": record.model_version, "distance": f"{record.distance:.6f}",
            "threshold": f"{record.threshold:.6f}",
            "similarity": f"{record.similarity:.6f}" if record.similarity is not None else None,
            "score": record.score, "verdict": record.verdict, "decision": record.decision,
            "elapsed_ms": f"{record.elapsed_ms:.1f}",
        }
        yield writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])


class RecordExportApi(APIView):
    permission_classes = [IsAuthenticated]
    content_negotiation_class = IgnoreClientContentNegotiation

    @extend_schema(parameters=[RecordFilterSerializer],
                   responses={(200, "text/csv"): OpenApiTypes.STR, **error_responses(400, 401)},
                   summary="The same records as CSV (every matching row, no pages)")
    def get(self, request: Request) -> StreamingHttpResponse:
        query = RecordFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        records = selectors.record_list(user=request.user, **query.validated_data)
        response = StreamingHttpResponse(csv_rows(records), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="case-records-{stamp}.csv"'
        response["Cache-Control"] = "private, no-store"
        return response
