"""URLs of the system app, included under /api/ in the `api` namespace."""

from django.urls import path

from . import views

urlpatterns = [
    path("health/", views.HealthApi.as_view(), name="health"),
    path("model/", views.ModelCardApi.as_view(), name="model"),
    path("model/plots/<str:name>.png", views.ModelPlotApi.as_view(), name="model-plot"),
]
