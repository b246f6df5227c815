"""Page-number pagination: `{"count", "next", "previous", "results"}`, its query and its OpenAPI shape."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.serializers import StrictSerializer


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request: Request) -> int | None:
        self.page_size = settings.SIGVER_PAGE_SIZE
        return super().get_page_size(request)


def paginated_response(*, serializer_class: type, queryset: Any, request: Request, view: APIView) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


class PageQuerySerializer(StrictSerializer):
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=Pagination.max_page_size)


def page_serializer(name: str, item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The serializer (for the OpenAPI schema) of a page of `item`s, named `name`."""
    return type(name, (serializers.Serializer,), {
        "count": serializers.IntegerField(),
        "next": serializers.CharField(allow_null=True),
        "previous": serializers.CharField(allow_null=True),
        "results": item(many=True),
    })
