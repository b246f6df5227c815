"""Register, sign in (token), sign out, change the password, delete the account. Register, token and password change
share the strict `auth` throttle scope (each checks a password)."""

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
from .models import UsernameKey, username_key, username_reserved

User = get_user_model()


EXPIRY_HELP = "when the token ends (SIGVER_TOKEN_TTL_HOURS after it was issued); null: never"


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
            if username_reserved(value):  # what case records call anonymous and deleted users
                raise serializers.ValidationError("That name is reserved.", code="reserved")
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
        expiry = serializers.DateTimeField(allow_null=True, help_text=EXPIRY_HELP)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, **error_responses(400, 415, 429)},
                   summary="Create an account; answers its API token")
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user, token, expiry = services.user_register(**serializer.validated_data)
        data = self.OutputSerializer({"id": user.pk, "username": user.get_username(), "token": token,
                                      "expiry": expiry}).data
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
        expiry = serializers.DateTimeField(allow_null=True, help_text=EXPIRY_HELP)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **error_responses(400, 401, 415, 429)},
                   summary="Sign in: a new API token (send it as `Authorization: Token <token>`) and when it ends")
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, expiry = services.user_token_obtain(**serializer.validated_data, request=request._request)
        return Response(self.OutputSerializer({"token": token, "expiry": expiry}).data)


class SignOutApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        everywhere = serializers.BooleanField(required=False, default=False,
                                              help_text="end every token of the account, not only this one")

    @extend_schema(request=InputSerializer, responses={204: None, **error_responses(400, 401)},
                   summary="Sign out: the token this request was sent with ends (with `everywhere`, all of yours)")
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.token_revoke(user=request.user, token=request.auth, **serializer.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordApi(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [AnonThrottle, UserThrottle, AuthThrottle]
    throttle_scope = "auth"

    class InputSerializer(serializers.Serializer):
        current_password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False,
                                                 style={"input_type": "password"})
        new_password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False,
                                             style={"input_type": "password"})

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField(help_text="a new token for this client: every other token of the account ended")
        expiry = serializers.DateTimeField(allow_null=True, help_text=EXPIRY_HELP)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **error_responses(400, 401, 415, 429)},
                   summary="Change your password: every token of the account ends; answers a new one")
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, expiry = services.user_password_change(user=request.user, **serializer.validated_data)
        return Response(self.OutputSerializer({"token": token, "expiry": expiry}).data)


class AccountApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None, **error_responses(401)},
                   summary="Delete your account with its tokens, profiles, references and their images; your case "
                           "records stay, anonymised")
    def delete(self, request: Request) -> Response:
        services.user_delete(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
