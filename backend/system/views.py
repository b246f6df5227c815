"""Health, the model card and its plots: one small APIView each (docs/api.md)."""

from __future__ import annotations

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.negotiation import IgnoreClientContentNegotiation
from config.schema import error_responses

from . import selectors


class HealthApi(APIView):
    throttle_classes: list = []  # probes must never be throttled

    class OutputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=["ok", "degraded"])
        model_loaded = serializers.BooleanField()
        model_version = serializers.CharField(allow_null=True)
        model_sha256 = serializers.CharField(allow_null=True, help_text="sha256 of the loaded weights (from the "
                                             "model card, checked against the file at load)")
        database = serializers.ChoiceField(choices=["ok", "unavailable"])

    @extend_schema(responses={200: OutputSerializer, 503: OutputSerializer}, summary="Liveness and readiness")
    def get(self, request: Request) -> Response:
        health = selectors.health_get()
        data = self.OutputSerializer(
            {"status": health.status, "model_loaded": health.model_loaded, "model_version": health.model_version,
             "model_sha256": health.model_sha256, "database": health.database}
        ).data
        return Response(data, status=status.HTTP_200_OK if health.ok else status.HTTP_503_SERVICE_UNAVAILABLE)


class ModelCardApi(APIView):
    @extend_schema(
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="the model card JSON, plus `plots`"),
                   **error_responses(503)},
        summary="The model card of the loaded model",
    )
    def get(self, request: Request) -> Response:
        card = selectors.model_card_get()
        card["plots"] = [
            {"name": name, "url": reverse("api:model-plot", kwargs={"name": name})}
            for name in selectors.model_plot_names()
        ]
        return Response(card)


class ModelPlotApi(APIView):
    content_negotiation_class = IgnoreClientContentNegotiation

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY, **error_responses(404)}, summary="A PNG plot")
    def get(self, request: Request, name: str) -> FileResponse:
        path = selectors.model_plot_path(name=name)
        return FileResponse(path.open("rb"), content_type="image/png")
