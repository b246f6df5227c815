"""Case records over HTTP: list with filters, one record, CSV export. Token auth; a clerk sees their own
records, a staff user every record (anonymous verifications included)."""

from __future__ import annotations

import csv
from typing import Any, Callable, Iterator

from django.conf import settings
from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import ServerBusy
from config.middleware import SettingsSemaphore
from config.negotiation import IgnoreClientContentNegotiation
from config.pagination import PageQuerySerializer, page_serializer, paginated_response
from config.schema import error_responses
from config.serializers import StrictSerializer
from config.throttles import AnonThrottle, ExportThrottle, UserThrottle
from sigml.decision import DECISIONS
from sigml.protocols import REFERENCE_SCORES

from . import selectors
from .models import KINDS, VerificationRecord



SCORE_METHODS = [*REFERENCE_SCORES, "pairwise"]
MAX_ID = 2**63 - 1  # the largest id a BigAutoField holds: a larger filter is a 400, never a database overflow


class RecordOutputSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="username", help_text='the user name, or "anonymous"')
    profile = serializers.IntegerField(source="profile_id", allow_null=True)
    score = serializers.FloatField(help_text="the number the decision judged: the pair's distance, or the profile "
                                   "verification's score")
    score_method = serializers.ChoiceField(choices=SCORE_METHODS,
                                           help_text="how `score` was formed: `pairwise`, `normalized` or `mean`")
    decision = serializers.ChoiceField(choices=list(DECISIONS), help_text="the answer given")
    decision_cuts = serializers.SerializerMethodField(
        help_text="the cuts the decision used: genuine at or below `genuine_below`, forged above `forged_above`, "
        "inconclusive in between (null for records made before the cuts were kept)")
    questioned_name = serializers.CharField(help_text="the questioned image's file name, as the client sent it")
    reference_names = serializers.ListField(
        child=serializers.CharField(), help_text="the reference images' file names (a profile's references: "
        '"reference <id>"), in the order of `reference_sha256`')
    has_images = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField(
        help_text="the questioned image as kept (only with SIGVER_AUDIT_STORE_IMAGES; else null)")

    class Meta:
        model = VerificationRecord
        fields = ["id", "created", "kind", "user", "client_address", "profile", "profile_name", "questioned_name",
                  "questioned_sha256", "reference_names", "reference_sha256", "model_version", "decision",
                  "decision_cuts", "score", "score_method", "threshold", "elapsed_ms", "details", "has_images",
                  "thumbnail_url"]
        extra_kwargs = {"threshold": {"help_text": "the equal-error-rate threshold of this score: a reference point; "
                                                  "the decision used `decision_cuts`"}}

    def get_has_images(self, record: VerificationRecord) -> bool:
        return bool(record.image_files)

    @extend_schema_field(inline_serializer(name="DecisionCuts", allow_null=True, fields={
        "genuine_below": serializers.FloatField(), "forged_above": serializers.FloatField()}))
    def get_decision_cuts(self, record: VerificationRecord) -> dict[str, float] | None:
        if record.genuine_below is None or record.forged_above is None:
            return None
        return {"genuine_below": record.genuine_below, "forged_above": record.forged_above}

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_thumbnail_url(self, record: VerificationRecord) -> str | None:
        return reverse("api:record-thumbnail", kwargs={"record_id": record.pk}) if record.image_files else None


PaginatedRecordListSerializer = page_serializer("PaginatedRecordListSerializer", RecordOutputSerializer)


class RecordFilterSerializer(StrictSerializer):
    date_from = serializers.DateField(required=False, help_text="YYYY-MM-DD: records of that day and later (UTC)")
    date_to = serializers.DateField(required=False, help_text="YYYY-MM-DD: records of that day and earlier (UTC)")
    profile = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID, help_text="a profile id")
    decision = serializers.ChoiceField(choices=DECISIONS, required=False)
    user = serializers.CharField(required=False, max_length=150, help_text='a user name, or "anonymous" (staff)')
    kind = serializers.ChoiceField(choices=KINDS, required=False, help_text="pair: /api/verify/; profile: a profile")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # `date_from` after `date_to` is no error: no record is in that period (an empty result)
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
                   responses={200: PaginatedRecordListSerializer, **error_responses(400, 401, 404)},
                   summary="Case records of verifications, newest first (yours; staff: everyone's)")
    def get(self, request: Request) -> Response:
        records = selectors.record_list(user=request.user, **_filters(request))
        return paginated_response(serializer_class=RecordOutputSerializer, queryset=records, request=request, view=self)


class RecordDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: RecordOutputSerializer, **error_responses(401, 404)}, summary="One case record")
    def get(self, request: Request, record_id: int) -> Response:
        return Response(RecordOutputSerializer(selectors.record_get(user=request.user, record_id=record_id)).data)


class RecordThumbnailApi(APIView):
    permission_classes = [IsAuthenticated]
    content_negotiation_class = IgnoreClientContentNegotiation

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY, **error_responses(401, 404)},
                   summary="The questioned image of a case record, as kept (SIGVER_AUDIT_STORE_IMAGES)")
    def get(self, request: Request, record_id: int) -> FileResponse:
        handle, content_type = selectors.record_image_open(
            record=selectors.record_get(user=request.user, record_id=record_id))
        response = FileResponse(handle, content_type=content_type)
        response["Cache-Control"] = "private, no-store"
        return response


CSV_COLUMNS = ["id", "created", "kind", "user", "client_address", "profile", "profile_name", "questioned_sha256",
               "reference_sha256", "model_version", "decision", "score", "score_method", "threshold", "elapsed_ms",
               "questioned_name", "reference_names", "genuine_below", "forged_above"]  # new columns go last


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


CSV_FIELDS = ["id", "created", "kind", "username", "client_address", "profile_id", "profile_name", "questioned_sha256",
              "reference_sha256", "model_version", "decision", "score", "score_method", "threshold",
              "elapsed_ms", "questioned_name", "reference_names", "genuine_below",
              "forged_above"]  # the columns' sources, in CSV_COLUMNS' order


def _number(value: float | None, digits: int) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


CSV_LINES_PER_CHUNK = 500  # one write to the socket per chunk: a line per write spent the worker's CPU on syscalls


def csv_rows(records) -> Iterator[str]:
    """The header, then the records' lines, in chunks of CSV_LINES_PER_CHUNK."""
    chunk: list[str] = []
    for line in csv_lines(records):
        chunk.append(line)
        if len(chunk) >= CSV_LINES_PER_CHUNK:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def csv_lines(records) -> Iterator[str]:
    """The header, then one line per record: read as tuples of the columns it needs (no model instances)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for (pk, created, kind, username, address, profile_id, profile_name, questioned, references, model_version,
         decision, score, score_method, threshold, elapsed_ms, questioned_name, reference_names, genuine_below,
         forged_above) in records.values_list(*CSV_FIELDS).iterator(chunk_size=2000):
        row = [pk, created.isoformat(), kind, username, address, profile_id, profile_name, questioned, references,
               model_version, decision, _number(score, 6), score_method, _number(threshold, 6),
               _number(elapsed_ms, 1), questioned_name, reference_names, _number(genuine_below, 6),
               _number(forged_above, 6)]
        yield writer.writerow([_cell(v) for v in row])


# At most SIGVER_MAX_CONCURRENT_EXPORTS CSV exports stream at once in a process; one more is a 503 `server_busy` with
# Retry-After at once (it does not wait: a waiting export would hold a server thread). With gunicorn's gthread workers
# the other threads stay free for health checks, verifications and the record list.
ExportSlots = SettingsSemaphore("SIGVER_MAX_CONCURRENT_EXPORTS")


class _RowsHoldingASlot:
    """The CSV rows; the export's slot goes back when the response is closed (Django calls the `close` of
    streaming content, the WSGI server closes every response: sent in full, cut off, or never started)."""

    def __init__(self, rows: Iterator[str], release: Callable[[], None]) -> None:
        self._rows = rows
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[str]:
        return self._rows

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()
        close = getattr(self._rows, "close", None)
        if close is not None:
            close()


EXPORT_RETRY_AFTER_SECONDS = 10


class RecordExportApi(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [AnonThrottle, UserThrottle, ExportThrottle]
    content_negotiation_class = IgnoreClientContentNegotiation

    @extend_schema(parameters=[RecordFilterSerializer],
                   responses={(200, "text/csv"): OpenApiTypes.STR, **error_responses(400, 401, 429, 503)},
                   summary="The same records as CSV (every matching row, no pages; its own throttle scope, and a "
                           "few at a time per server process: else 503 with Retry-After)")
    def get(self, request: Request) -> StreamingHttpResponse:
        query = RecordFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        records = selectors.record_list(user=request.user, **query.validated_data)
        slots = ExportSlots.get()
        if not slots.acquire(blocking=False):
            raise ServerBusy("Other exports of case records are running; try again shortly.",
                              retry_after=EXPORT_RETRY_AFTER_SECONDS)
        try:
            response = StreamingHttpResponse(_RowsHoldingASlot(csv_rows(records), slots.release),
                                             content_type="text/csv; charset=utf-8")
        except BaseException:
            slots.release()
            raise
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="case-records-{stamp}.csv"'
        response["Cache-Control"] = "private, no-store"
        return response
