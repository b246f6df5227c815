"""One small APIView per endpoint: validate with a nested InputSerializer, call one selector or
service, answer with a nested OutputSerializer. The HTTP contract is docs/api.md."""

from __future__ import annotations

import itertools

import mimetypes
from typing import Any

from django.conf import settings
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ErrorDetail
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import NotFound
from config.negotiation import IgnoreClientContentNegotiation
from config.pagination import PageQuerySerializer, page_serializer, paginated_response
from config.parsers import JSONParser
from config.schema import error_responses, multipart
from config.serializers import StrictSerializer
from config.throttles import (AnonThrottle, ExplainThrottle, ImageThrottle, PairsVerifyThrottle, UserThrottle,
                              client_address)
from sigml.copies import COPY_FLAG
from sigml.decision import PAGE_FLAG
from sigml.decision import DECISIONS
from sigml.pairs import Pair
from sigml.protocols import REFERENCE_SCORES
from sigml.splits import SPLITS

from audit.services import Requester
from config.middleware import request_deadline

from . import selectors, services
from .models import Profile, Reference
from .uploads import upload_read, uploads_read

SPLIT_CHOICES = (*SPLITS, selectors.ALL_WRITERS)


def requester_of(request: Request) -> Requester:
    """Who asks, for the case record the service writes: the user and the client address (empty if it cannot be
    told: a record is never refused for it)."""
    try:
        address = client_address(request)
    except Exception:  # noqa: BLE001
        address = ""
    return Requester(user=request.user, client_address=address)


def _required(field: str, message: str) -> serializers.ValidationError:
    return serializers.ValidationError({field: [ErrorDetail(message, code="required")]})


# --- shared output serializers ----------------------------------------------------------------------

DECISION_HELP = (
    "the answer to act on: `genuine` = the score is at or below the cut at which at most 2% of validation writers' "
    "skilled forgeries score; `forged` = above the cut at which at most 2% of their genuine signatures score (rates "
    "averaged over datasets, cuts chosen to hold in 9 of 10 resamples of those writers); `inconclusive` = in "
    "between (or a copy of the reference): refer to a specialist"
)
SCORE_HELP = ("the number the decision compares with its cuts (`decision_rates`); smaller = more alike; what it is "
              "says `score_method`")
SCORE_METHODS = [*REFERENCE_SCORES, "pairwise"]
SCORE_METHOD_HELP = (
    "what `score` is: `pairwise` = the embedding distance of two signatures (a pair, or a profile with a single "
    "reference), `normalized` = the mean distance to a profile's references divided by their spread (two or more "
    "references), `mean` = the mean distance to the references (older model cards)"
)
THRESHOLD_HELP = ("the equal-error-rate threshold of this score (validation writers' false accepts = false rejects): "
                  "a reference point; the decision uses the cuts in `decision_rates`")


class DecisionRatesSerializer(serializers.Serializer):
    genuine_below = serializers.FloatField(help_text="scores at or below this cut are decided genuine")
    forged_above = serializers.FloatField(help_text="scores above this cut are decided forged")
    forgeries_scoring_this_low = serializers.FloatField(
        required=False, help_text="share of validation writers' skilled forgeries whose score is at most this one "
        "(the false-accept rate if this score were accepted)")
    genuine_scoring_this_high = serializers.FloatField(
        required=False, help_text="share of validation writers' genuine signatures scoring more than this one "
        "(the false-reject rate if this score were refused)")
    measured_on = serializers.CharField(required=False)


@extend_schema_field({"type": "number", "format": "double", "deprecated": True})
class DeprecatedFloatField(serializers.FloatField):
    """A number also given under another name, for clients of API version 1 (marked deprecated in the schema)."""


@extend_schema_field({"type": "boolean", "deprecated": True})
class DeprecatedMatchField(serializers.Field):
    """`match` of API version 1, defined from the decision (`decision == "genuine"`), so that it can never say
    true where the decision is inconclusive or forged; read-only, marked deprecated in the schema."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("source", "*")
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("help_text", 'deprecated: `decision == "genuine"`; read `decision`')
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> bool:
        return value["decision"] == "genuine"


class ScoreMethodField(serializers.ChoiceField):
    """`score_method` of an answer; a pair's answer is always `pairwise`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("source", "*")
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("help_text", SCORE_METHOD_HELP)
        super().__init__(choices=SCORE_METHODS, **kwargs)

    def to_representation(self, value: Any) -> str:
        return str(value.get("score_method") or "pairwise")


class CropField(serializers.CharField):
    """`left,top,right,bottom` in pixels of the uploaded image: only that part is judged (the crop step)."""

    default_error_messages = {"crop": "Give the crop box as four whole numbers: left,top,right,bottom (pixels)."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 100)
        kwargs.setdefault("help_text", "optional crop box `left,top,right,bottom` in pixels of the image: "
                          "only the signature inside it is judged")
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> tuple[int, int, int, int]:
        parts = str(super().to_internal_value(data)).replace(" ", "").split(",")
        try:
            box = tuple(int(p) for p in parts)
        except ValueError:
            self.fail("crop")
        if len(box) != 4 or box[2] <= box[0] or box[3] <= box[1] or min(box) < 0:
            self.fail("crop")
        return box  # type: ignore[return-value]


class WarningSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="the upload it concerns")
    code = serializers.CharField(help_text="e.g. `ruled_line`")
    message = serializers.CharField()


BOX_FIELD_HELP = "left, top, right, bottom (exclusive), in the image's pixels"
AUTO_CROP_HELP = ("when an upload is refused as a page (`not_a_signature`), judge the best box the signature locator "
                  "finds on it instead (the first that passes the quality gate), said in `auto_crops`; without it the "
                  "page is refused with `suggested_crops`")


class AutoCropSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="the upload that was a page")
    box = serializers.ListField(child=serializers.IntegerField(), min_length=4, max_length=4, help_text=BOX_FIELD_HELP)
    crop = serializers.CharField(help_text="the same box as a `crop` value")
    confidence = serializers.FloatField(help_text="the locator's confidence in the box")
    thumbnail = serializers.CharField(help_text="what the model compared, a PNG data URI: check it is the signature")


class VerificationOutputSerializer(serializers.Serializer):
    """Every verification's answer: `decision` is the answer, `score` what it judged (API version 2: no `verdict`
    or `similarity`, which could disagree with the decision; docs/api.md "Changes")."""

    decision = serializers.ChoiceField(choices=list(DECISIONS), help_text=DECISION_HELP)
    score = serializers.FloatField(source="distance", help_text=SCORE_HELP)
    score_method = ScoreMethodField()
    threshold = serializers.FloatField(help_text=THRESHOLD_HELP)
    decision_rates = DecisionRatesSerializer(help_text="the decision's cuts and the rates measured at this score")
    warnings = WarningSerializer(many=True, help_text="what the quality gate doubted in an upload (not refused)")
    flags = serializers.ListField(
        child=serializers.ChoiceField(choices=[COPY_FLAG, PAGE_FLAG]),
        help_text="`identical_to_reference`: the questioned image is the reference itself or a near-identical copy "
        "(a photocopy, a scan of the same sheet, a replayed image); a genuine hand never repeats exactly, so the "
        "answer is never genuine: decision inconclusive. `cut_from_a_page`: a signature cut from a page (by a crop "
        "given or by `auto_crop`) scored as a forgery would; genuine signatures cut from pages often do, so the "
        "answer is not forged but inconclusive (compare a clean scan)")
    auto_crops = AutoCropSerializer(
        many=True, required=False,
        help_text="the uploads judged on a located box instead of the page sent (`auto_crop=true`); empty otherwise")
    model_version = serializers.CharField()
    elapsed_ms = serializers.FloatField()
    match = DeprecatedMatchField()


class PairSerializer(serializers.Serializer):
    split = serializers.CharField()
    kind = serializers.ChoiceField(choices=["genuine", "skilled", "random"])
    label = serializers.ChoiceField(choices=["genuine", "forged"], help_text="ground truth")
    writer_a = serializers.CharField()
    path_a = serializers.CharField()
    url_a = serializers.CharField()
    writer_b = serializers.CharField()
    path_b = serializers.CharField()
    url_b = serializers.CharField()


def image_url(dataset: selectors.Dataset, path: str) -> str:
    return reverse("api:dataset-image", kwargs={"name": dataset.name, "path": path})


def pair_dict(dataset: selectors.Dataset, pair: Pair) -> dict[str, Any]:
    return {
        "split": pair.split, "kind": pair.kind, "label": services.pair_truth(pair),
        "writer_a": pair.writer_a, "path_a": pair.path_a, "url_a": image_url(dataset, pair.path_a),
        "writer_b": pair.writer_b, "path_b": pair.path_b, "url_b": image_url(dataset, pair.path_b),
    }


# --- verify two images ------------------------------------------------------------------------------

class VerifyApi(APIView):
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [AnonThrottle, UserThrottle, ExplainThrottle]  # explain=true: its own `explain` scope too

    class InputSerializer(serializers.Serializer):
        reference = serializers.FileField(required=False, allow_empty_file=True, help_text="the known genuine signature")
        questioned = serializers.FileField(required=False, allow_empty_file=True, help_text="the signature to check")
        image_1 = serializers.FileField(required=False, allow_empty_file=True, help_text="alias of reference")
        image_2 = serializers.FileField(required=False, allow_empty_file=True, help_text="alias of questioned")
        previews = serializers.BooleanField(default=False, help_text="add the preprocessed images as PNG data URIs")
        explain = serializers.BooleanField(default=False, help_text="add occlusion-sensitivity heatmaps (slower)")
        reference_crop = CropField()
        questioned_crop = CropField()
        auto_crop = serializers.BooleanField(default=False, help_text=AUTO_CROP_HELP)

        ALIASES = {"reference": "image_1", "questioned": "image_2"}

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            files = {}
            for name, alias in self.ALIASES.items():
                upload, aliased = attrs.pop(name, None), attrs.pop(alias, None)
                if upload is not None and aliased is not None:
                    raise serializers.ValidationError(
                        {name: [f"Send `{name}` or its alias `{alias}`, not both."]}, code="invalid")
                if upload is None and aliased is None:
                    raise _required(name, f"No file was submitted (send `{name}` or `{alias}`).")
                # the field the client used, so that errors name it
                files[name] = (name, upload) if upload is not None else (alias, aliased)
            return {**attrs, **files}

    class OutputSerializer(VerificationOutputSerializer):
        distance = DeprecatedFloatField(help_text="deprecated: the same value as `score` (a pair's score is its "
                                        "distance); read `score`")
        previews = inline_serializer(
            name="VerifyPreviews", required=False,
            fields={"reference": serializers.CharField(), "questioned": serializers.CharField()},
        )
        explanation = inline_serializer(
            name="VerifyExplanation", required=False,
            fields={
                "method": serializers.CharField(), "reference": serializers.CharField(),
                "questioned": serializers.CharField(), "note": serializers.CharField(),
            },
        )

    @extend_schema(
        request=multipart(InputSerializer),
        responses={200: OutputSerializer, **error_responses(400, 413, 415, 422, 429, 503)},
        summary="Verify a questioned signature against one reference",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        reference, questioned = uploads_read([data.pop("reference"), data.pop("questioned")])
        result = services.verify_pair(reference=reference, questioned=questioned, requester=requester_of(request),
                                      deadline=request_deadline(request), **data)
        return Response(self.OutputSerializer(result).data)


class LocateApi(APIView):
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [AnonThrottle, UserThrottle]

    class InputSerializer(serializers.Serializer):
        image = serializers.FileField(allow_empty_file=True, help_text="a page, cheque or form holding signatures")

    class OutputSerializer(serializers.Serializer):
        signatures = inline_serializer(
            name="LocatedSignature", many=True,
            fields={
                "box": serializers.ListField(child=serializers.IntegerField(), min_length=4, max_length=4,
                                             help_text=BOX_FIELD_HELP),
                "crop": serializers.CharField(help_text="the same box as a `crop` value for the verify endpoints"),
                "confidence": serializers.FloatField(),
            },
        )
        count = serializers.IntegerField()
        image_size = serializers.ListField(child=serializers.IntegerField(), help_text="width, height")
        note = serializers.CharField()
        elapsed_ms = serializers.FloatField()

    @extend_schema(
        request=multipart(InputSerializer),
        responses={200: OutputSerializer, **error_responses(400, 413, 415, 429, 503)},
        summary="Find the handwritten signatures on a page, cheque or form",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        (image,) = uploads_read([("image", serializer.validated_data["image"])])
        result = services.signatures_locate(image=image, deadline=request_deadline(request))
        return Response(self.OutputSerializer(result).data)


# --- datasets ---------------------------------------------------------------------------------------

class DatasetSummarySerializer(serializers.Serializer):
    name = serializers.CharField()
    layout = serializers.CharField()
    writers = serializers.IntegerField(source="writer_count")
    genuine = serializers.IntegerField()
    forged = serializers.IntegerField()
    splits = serializers.ListField(child=serializers.CharField())


def dataset_summary(dataset: selectors.Dataset) -> dict[str, Any]:
    return {"name": dataset.name, "layout": dataset.layout, "writer_count": len(dataset.writers),
            "genuine": dataset.genuine, "forged": dataset.forged, "splits": dataset.splits}


class DatasetListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        datasets = DatasetSummarySerializer(many=True)

    @extend_schema(operation_id="datasets_list", responses={200: OutputSerializer},
                   summary="Datasets found under SIGVER_DATA_DIR")
    def get(self, request: Request) -> Response:
        datasets = [dataset_summary(d) for d in selectors.dataset_list()]
        return Response(self.OutputSerializer({"datasets": datasets}).data)


class DatasetDetailApi(APIView):
    class OutputSerializer(DatasetSummarySerializer):
        writer_ids = serializers.ListField(child=serializers.CharField())
        split_of_writer = serializers.DictField(child=serializers.CharField())

    @extend_schema(responses={200: OutputSerializer, **error_responses(404)}, summary="One dataset")
    def get(self, request: Request, name: str) -> Response:
        dataset = selectors.dataset_get(name=name)
        data = {**dataset_summary(dataset), "writer_ids": dataset.writers, "split_of_writer": dataset.split_of_writer}
        return Response(self.OutputSerializer(data).data)


class DatasetWriterApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class ImageSerializer(serializers.Serializer):
            path = serializers.CharField()
            url = serializers.CharField()

        writer = serializers.CharField()
        split = serializers.CharField(allow_null=True)
        genuine = ImageSerializer(many=True)
        forged = ImageSerializer(many=True)

    @extend_schema(responses={200: OutputSerializer, **error_responses(404)}, summary="The signatures of one writer")
    def get(self, request: Request, name: str, writer: str) -> Response:
        dataset = selectors.dataset_get(name=name)
        records = selectors.dataset_writer_records(dataset=dataset, writer=writer)
        data = {"writer": writer, "split": dataset.split_of(writer)}
        for label in ("genuine", "forged"):
            data[label] = [{"path": r.path, "url": image_url(dataset, r.path)} for r in records if r.label == label]
        return Response(self.OutputSerializer(data).data)


class DatasetImageApi(APIView):
    content_negotiation_class = IgnoreClientContentNegotiation
    throttle_classes = [ImageThrottle]  # its own generous scope: browsing thumbnails never throttles verification
    throttle_scope = "images"

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY, **error_responses(404)}, summary="A dataset image")
    def get(self, request: Request, name: str, path: str) -> FileResponse:
        dataset = selectors.dataset_get(name=name)
        file_path = selectors.dataset_image_path(dataset=dataset, path=path)
        content_type = mimetypes.guess_type(file_path.name)[0] or "application/octet-stream"
        response = FileResponse(file_path.open("rb"), content_type=content_type)
        response["Cache-Control"] = "private, max-age=3600"
        return response


class PairsQuerySerializer(StrictSerializer):
    split = serializers.ChoiceField(choices=SPLIT_CHOICES, required=False,
                                    help_text='default: "test" when the dataset has a split file, else "all"')
    kind = serializers.ChoiceField(choices=selectors.PAIR_KIND_CHOICES, default="mixed")
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)

    max_limit_setting = "SIGVER_PAIRS_MAX_LIMIT"
    default_limit = 10

    def get_fields(self) -> dict[str, serializers.Field]:
        """`limit` with the maximum the settings allow, so that the schema advertises the bound it enforces."""
        fields = super().get_fields()
        fields["limit"] = serializers.IntegerField(min_value=1, max_value=getattr(settings, self.max_limit_setting),
                                                   default=self.default_limit, help_text="how many pairs")
        return fields


def _default_split(dataset: selectors.Dataset, split: str | None) -> str:
    if split:
        return split
    return "test" if "test" in dataset.splits else selectors.ALL_WRITERS


class DatasetPairsApi(APIView):
    class OutputSerializer(serializers.Serializer):
        pairs = PairSerializer(many=True)

    @extend_schema(parameters=[PairsQuerySerializer], responses={200: OutputSerializer, **error_responses(400, 404)},
                   summary="Sample labelled pairs of a dataset split")
    def get(self, request: Request, name: str) -> Response:
        dataset = selectors.dataset_get(name=name)
        query = PairsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = {**query.validated_data, "split": _default_split(dataset, query.validated_data.get("split"))}
        pairs = selectors.dataset_pairs_sample(dataset=dataset, **params)
        return Response(self.OutputSerializer({"pairs": [pair_dict(dataset, p) for p in pairs]}).data)


class DatasetPairsVerifyApi(APIView):
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    throttle_classes = [AnonThrottle, UserThrottle, PairsVerifyThrottle]  # its own `pairs_verify` scope too

    class InputSerializer(PairsQuerySerializer):
        max_limit_setting = "SIGVER_PAIRS_VERIFY_MAX_LIMIT"
        default_limit = 20

    class OutputSerializer(serializers.Serializer):
        class ResultSerializer(PairSerializer):
            decision = serializers.ChoiceField(choices=list(DECISIONS), help_text=DECISION_HELP)
            score = serializers.FloatField(help_text=SCORE_HELP)
            score_method = ScoreMethodField()
            correct = serializers.BooleanField(allow_null=True, help_text="the decision against `label`: true = "
                                               "decided right, false = decided the opposite, null = inconclusive")
            distance = DeprecatedFloatField(source="score", help_text="deprecated: the same value as `score`")
            match = DeprecatedMatchField()

        results = ResultSerializer(many=True)
        accuracy = serializers.FloatField(allow_null=True, help_text="share of the pairs decided right (null: none)")
        inconclusive = serializers.FloatField(allow_null=True, help_text="share of the pairs left inconclusive")
        wrong = serializers.FloatField(allow_null=True, help_text="share of the pairs decided the opposite of the truth")
        n = serializers.IntegerField()
        skipped = serializers.IntegerField(help_text="pairs left out because an image could not be read")
        threshold = serializers.FloatField(help_text=THRESHOLD_HELP)
        model_version = serializers.CharField()
        elapsed_ms = serializers.FloatField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **error_responses(400, 404, 415, 503)},
                   summary="Run the model on sampled pairs and count its decisions right, inconclusive and wrong")
    def post(self, request: Request, name: str) -> Response:
        dataset = selectors.dataset_get(name=name)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        params = {**serializer.validated_data, "split": _default_split(dataset, serializer.validated_data.get("split"))}
        outcome = services.dataset_pairs_verify(dataset=dataset, **params)
        outcome["results"] = [
            {**pair_dict(dataset, r["pair"]), **{k: v for k, v in r.items() if k != "pair"}} for r in outcome["results"]
        ]
        return Response(self.OutputSerializer(outcome).data)


# --- profiles ---------------------------------------------------------------------------------------

class ProfileOutputSerializer(serializers.ModelSerializer):
    reference_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Profile
        fields = ["id", "name", "external_id", "created", "reference_count"]


PaginatedProfileListSerializer = page_serializer("PaginatedProfileListSerializer", ProfileOutputSerializer)


class ProfileListApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=200)
        external_id = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    class FilterSerializer(StrictSerializer):
        external_id = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                            help_text="only the profile with exactly this external id")
        search = serializers.CharField(required=False, max_length=200,
                                       help_text="profiles whose name or external id contains this text (any case)")

    @extend_schema(operation_id="profiles_list", parameters=[PageQuerySerializer, FilterSerializer],
                   responses={200: PaginatedProfileListSerializer, **error_responses(400, 401, 404)},
                   summary="Your profiles, paginated; look one up by `external_id` or `search`")
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return paginated_response(serializer_class=ProfileOutputSerializer,
                                  queryset=selectors.profile_list(owner=request.user, **filters.validated_data),
                                  request=request, view=self)

    @extend_schema(request=InputSerializer, responses={201: ProfileOutputSerializer, **error_responses(400, 401, 409)},
                   summary="Create a profile")
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        profile = services.profile_create(owner=request.user, **serializer.validated_data)
        profile = selectors.profile_get(owner=request.user, profile_id=profile.pk)
        return Response(ProfileOutputSerializer(profile).data, status=status.HTTP_201_CREATED)


class ProfileDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=200, required=False)
        external_id = serializers.CharField(max_length=200, required=False, allow_blank=True)

    @extend_schema(responses={200: ProfileOutputSerializer, **error_responses(401, 404)}, summary="One profile")
    def get(self, request: Request, profile_id: int) -> Response:
        return Response(ProfileOutputSerializer(selectors.profile_get(owner=request.user, profile_id=profile_id)).data)

    @extend_schema(request=InputSerializer, responses={200: ProfileOutputSerializer,
                                                      **error_responses(400, 401, 404, 409)},
                   summary="Rename a profile or change its external id")
    def patch(self, request: Request, profile_id: int) -> Response:
        profile = selectors.profile_get(owner=request.user, profile_id=profile_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.profile_update(profile=profile, **serializer.validated_data)
        return Response(ProfileOutputSerializer(selectors.profile_get(owner=request.user, profile_id=profile_id)).data)

    @extend_schema(responses={204: None, **error_responses(401, 404)}, summary="Delete a profile and its references")
    def delete(self, request: Request, profile_id: int) -> Response:
        services.profile_delete(profile=selectors.profile_get(owner=request.user, profile_id=profile_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- references -------------------------------------------------------------------------------------

class ReferenceOutputSerializer(serializers.ModelSerializer):
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = Reference
        fields = ["id", "created", "image_url", "width", "height", "content_type", "model_version", "crop",
                  "from_a_page"]
        extra_kwargs = {"crop": {"help_text": "the part of the image enrolled ([left, top, right, bottom] pixels: the "
                                 "crop sent or the box `auto_crop` chose); null: the whole image"},
                        "from_a_page": {"help_text": "the signature was cut from a page: a verify against this "
                                        "profile is never answered forged (flag `cut_from_a_page`)"}}

    def get_image_url(self, reference: Reference) -> str:
        return reverse("api:reference-image", kwargs={"profile_id": reference.profile_id, "reference_id": reference.pk})


class CheckedReferenceOutputSerializer(ReferenceOutputSerializer):
    consistency_score = serializers.FloatField(
        allow_null=True, help_text="this reference scored against the profile's other references as a questioned "
        "signature would be (null with fewer than 3 references)")
    outlier = serializers.BooleanField(
        help_text="the other references would decide this one forged: probably not the person's signature, or "
        "damaged; check it and delete it if so")

    class Meta(ReferenceOutputSerializer.Meta):
        fields = [*ReferenceOutputSerializer.Meta.fields, "consistency_score", "outlier"]


class ReferenceListOutputSerializer(serializers.Serializer):
    results = CheckedReferenceOutputSerializer(many=True)
    guidance = inline_serializer(name="ReferenceGuidance", fields={
        "reference_count": serializers.IntegerField(),
        "published_k": serializers.ListField(child=serializers.IntegerField(),
                                             help_text="numbers of references the published figures are measured with"),
        "enough": serializers.BooleanField(help_text="at least the smallest of them"),
        "message": serializers.CharField(),
    })


def reference_list_response(profile: Profile, status_code: int = status.HTTP_200_OK,
                            only: list[Reference] | None = None) -> Response:
    """The profile's references (or `only` those), each checked against all of the profile's references."""
    references = selectors.reference_list_checked(profile=profile)
    wanted = {r.pk for r in only} if only is not None else None
    data = {"results": [r for r in references if wanted is None or r.pk in wanted],
            "guidance": selectors.reference_guidance(count=len(references))}
    return Response(ReferenceListOutputSerializer(data).data, status=status_code)


class ReferenceListApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        image = serializers.FileField(required=False, allow_empty_file=True, help_text="one genuine signature")
        images = serializers.ListField(child=serializers.FileField(allow_empty_file=True), required=False,
                                       help_text="several genuine signatures")
        crop = CropField(help_text="optional crop box `left,top,right,bottom` of `image`: only the signature inside it "
                         "is enrolled")
        crops = serializers.ListField(
            child=serializers.CharField(allow_blank=True, max_length=100), required=False, max_length=100,
            help_text="optional crop boxes of `images`, one per file in the same order (`left,top,right,bottom`, or "
            "empty for the whole image)")
        auto_crop = serializers.BooleanField(default=False, help_text=AUTO_CROP_HELP)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            uploads, crops = [], {}
            if attrs.get("image") is not None:
                uploads.append(("image", attrs["image"]))
                if attrs.get("crop") is not None:
                    crops["image"] = attrs["crop"]
            images, boxes = attrs.get("images") or [], attrs.get("crops") or []
            if len(boxes) > len(images):
                raise serializers.ValidationError(
                    {"crops": [f"{len(boxes)} crop boxes for {len(images)} files in `images`: send at most one per file."]},
                    code="invalid")
            for i, (upload, box) in enumerate(itertools.zip_longest(images, boxes, fillvalue="")):
                uploads.append((f"images[{i}]", upload))
                if box:
                    try:
                        crops[f"images[{i}]"] = CropField().run_validation(box)
                    except serializers.ValidationError as exc:
                        raise serializers.ValidationError({"crops": [f"crops[{i}]: {m}" for m in exc.detail]},
                                                          code="invalid") from exc
            if not uploads:
                raise _required("images", "No file was submitted (send `image` or `images`).")
            return {"uploads": uploads, "crops": crops, "auto_crop": attrs["auto_crop"]}

    @extend_schema(operation_id="profiles_references_list", responses={200: ReferenceListOutputSerializer, **error_responses(401, 404)},
                   summary="The references of a profile")
    def get(self, request: Request, profile_id: int) -> Response:
        return reference_list_response(selectors.profile_get(owner=request.user, profile_id=profile_id))

    @extend_schema(request=multipart(InputSerializer),
                   responses={201: ReferenceListOutputSerializer,
                              **error_responses(400, 401, 404, 409, 413, 415, 422, 429, 503)},
                   summary="Upload genuine references (embeddings are computed once and stored); answers with the "
                   "new ones, each checked against all of the profile's references")
    def post(self, request: Request, profile_id: int) -> Response:
        profile = selectors.profile_get(owner=request.user, profile_id=profile_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        created = services.references_create(profile=profile, images=uploads_read(data["uploads"]), crops=data["crops"],
                                             auto_crop=data["auto_crop"], deadline=request_deadline(request))
        return reference_list_response(profile, status.HTTP_201_CREATED, only=created)


class ReferenceDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: CheckedReferenceOutputSerializer, **error_responses(401, 404)}, summary="One reference")
    def get(self, request: Request, profile_id: int, reference_id: int) -> Response:
        profile = selectors.profile_get(owner=request.user, profile_id=profile_id)
        reference = selectors.reference_get(profile=profile, reference_id=reference_id)
        checked = next(r for r in selectors.reference_list_checked(profile=profile) if r.pk == reference.pk)
        return Response(CheckedReferenceOutputSerializer(checked).data)

    @extend_schema(responses={204: None, **error_responses(401, 404)}, summary="Delete a reference and its image")
    def delete(self, request: Request, profile_id: int, reference_id: int) -> Response:
        profile = selectors.profile_get(owner=request.user, profile_id=profile_id)
        services.reference_delete(reference=selectors.reference_get(profile=profile, reference_id=reference_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReferenceImageApi(APIView):
    permission_classes = [IsAuthenticated]
    content_negotiation_class = IgnoreClientContentNegotiation

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY, **error_responses(401, 404)},
                   summary="The stored image of a reference (owner only)")
    def get(self, request: Request, profile_id: int, reference_id: int) -> FileResponse:
        profile = selectors.profile_get(owner=request.user, profile_id=profile_id)
        reference = selectors.reference_get(profile=profile, reference_id=reference_id)
        try:
            handle = reference.image.open("rb")
        except OSError:
            raise NotFound("the stored image is missing") from None
        response = FileResponse(handle, content_type=reference.content_type)
        response["Content-Disposition"] = f'inline; filename="reference-{reference.pk}.{reference.image.name.rsplit(".", 1)[-1]}"'
        response["Cache-Control"] = "private, no-store"
        return response


class ProfileVerifyApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        questioned = serializers.FileField(allow_empty_file=True, help_text="the signature to check")
        crop = CropField()
        auto_crop = serializers.BooleanField(default=False, help_text=AUTO_CROP_HELP)

    class OutputSerializer(VerificationOutputSerializer):
        references = inline_serializer(
            name="ReferenceDistance", many=True,
            fields={"id": serializers.IntegerField(), "distance": serializers.FloatField()},
        )
        reference_count = serializers.IntegerField()
        copy_of_reference = serializers.IntegerField(
            allow_null=True, help_text="id of the reference the questioned image is a copy of (flags has "
            "`identical_to_reference`), else null")
        mean_distance = serializers.FloatField(help_text="mean embedding distance to the references")
        reference_spread = serializers.FloatField(
            allow_null=True, help_text="mean distance between the references themselves (null with one reference)")

    @extend_schema(request=multipart(InputSerializer),
                   responses={200: OutputSerializer, **error_responses(400, 401, 404, 413, 415, 422, 429, 503)},
                   summary="Verify a questioned signature against all references of a profile")
    def post(self, request: Request, profile_id: int) -> Response:
        profile = selectors.profile_get(owner=request.user, profile_id=profile_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        questioned = upload_read(upload=serializer.validated_data["questioned"], field="questioned")
        result = services.profile_verify(profile=profile, questioned=questioned,
                                         crop=serializer.validated_data.get("crop"),
                                         auto_crop=serializer.validated_data["auto_crop"], requester=requester_of(request),
                                         deadline=request_deadline(request))
        return Response(self.OutputSerializer(result).data)
