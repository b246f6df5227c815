"""URLs of the audit app, included under /api/records/ in the `api` namespace."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.RecordListApi.as_view(), name="record-list"),
    path("export/", views.RecordExportApi.as_view(), name="record-export"),
    path("<int:record_id>/", views.RecordDetailApi.as_view(), name="record-detail"),
    path("<int:record_id>/thumbnail/", views.RecordThumbnailApi.as_view(), name="record-thumbnail"),
]
