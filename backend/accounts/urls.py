"""URLs of the accounts app, included under /api/auth/ in the `api` namespace."""

from django.urls import path

from . import views

urlpatterns = [
    path("register/", views.RegisterApi.as_view(), name="register"),
    path("token/", views.TokenApi.as_view(), name="token"),
    path("sign-out/", views.SignOutApi.as_view(), name="sign-out"),
    path("password/", views.PasswordApi.as_view(), name="password"),
    path("account/", views.AccountApi.as_view(), name="account"),
]
