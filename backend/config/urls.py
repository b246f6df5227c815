"""URLs: everything under /api/ in the `api` namespace (reverse("api:verify")), plus the admin."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.exceptions import not_found
from config.views import ApiIndexApi, RedocView

api_patterns = [
    path("", ApiIndexApi.as_view(), name="index"),
    path("", include("system.urls")),
    path("", include("signatures.urls")),
    path("auth/", include("accounts.urls")),
    path("records/", include("audit.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", RedocView.as_view(url_name="api:schema"), name="redoc"),
    # JSON 404 for any other /api/ URL, DEBUG or not; also for POST/PATCH/DELETE (no CSRF 403 page first)
    re_path(r"^.*$", csrf_exempt(not_found), name="not-found"),
]

urlpatterns = [
    path("api/", include((api_patterns, "api"))),
    path("admin/", admin.site.urls),
]

handler400 = "config.exceptions.bad_request"
handler403 = "config.exceptions.permission_denied"
handler404 = "config.exceptions.not_found"
handler500 = "config.exceptions.server_error"
