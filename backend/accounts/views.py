"""Register, token, delete account. Register and token share the strict `auth` throttle scope."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.parsers import JSONParser
from config.schema import error_responses
from config.throttles import AnonThrottle, AuthThrottle, UserThrottle

from . import services
from .models import UsernameKey, username_key

User = get_user_model()


class RegisterApi(APIView):
    parser_classes = [JSONParser, FormParser, MultiPartParser]  # like DRF's ObtainAuthToken (curl -F)
    throttle_classes = [AnonThrottle, UserThrottle, AuthThrottle]
    throttle_scope = "auth"

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
        password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False,
                                         style={"input_type": "password"})
        # the user model's column is 254 characters: a longer address was a DataError (500) on PostgreSQL
        email = serializers.EmailField(required=False, allow_blank=True, default="",
                                       max_length=User._meta.get_field("email").max_length)

        def validate_username(self, value: str) -> str:
            # the unique index on the normalised name (accounts.models) decides under races; this answers early
            if UsernameKey.objects.filter(key=username_key(value)).exists() or User.objects.filter(username__iexact=value).exists():
                raise serializers.ValidationError("A user with that username already exists.", code="unique")
            return value

        def validate(self, attrs: dict) -> dict:
            try:
                validate_password(attrs["password"], user=User(username=attrs["username"], email=attrs.get("email", "")))
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"password": list(exc.messages)}, code="password") from None
            return attrs

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        token = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, **error_responses(400, 415, 429)},
                   summary="Create an account; answers its API token")
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user, token = services.user_register(**serializer.validated_data)
        data = self.OutputSerializer({"id": user.pk, "username": user.get_username(), "token": token}).data
        return Response(data, status=status.HTTP_201_CREATED)


class TokenApi(APIView):
    parser_classes = [JSONParser, FormParser, MultiPartParser]  # like DRF's ObtainAuthToken (curl -F)
    throttle_classes = [AnonThrottle, UserThrottle, AuthThrottle]
    throttle_scope = "auth"

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False,
                                         style={"input_type": "password"})

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **error_responses(400, 401, 415, 429)},
                   summary="Obtain the API token of an account (send it as `Authorization: Token <token>`)")
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token = services.user_token_obtain(**serializer.validated_data, request=request._request)
        return Response(self.OutputSerializer({"token": token}).data)


class AccountApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None, **error_responses(401)},
                   summary="Delete your account with all of its profiles, references and images")
    def delete(self, request: Request) -> Response:
        services.user_delete(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
