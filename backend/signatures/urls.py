"""URLs of the signatures app, included under /api/ in the `api` namespace."""

from django.urls import path

from . import views

urlpatterns = [
    path("verify/", views.VerifyApi.as_view(), name="verify"),
    path("locate/", views.LocateApi.as_view(), name="locate"),
    path("datasets/", views.DatasetListApi.as_view(), name="dataset-list"),
    path("datasets/<str:name>/", views.DatasetDetailApi.as_view(), name="dataset-detail"),
    path("datasets/<str:name>/writers/<str:writer>/", views.DatasetWriterApi.as_view(), name="dataset-writer"),
    path("datasets/<str:name>/images/<path:path>", views.DatasetImageApi.as_view(), name="dataset-image"),
    path("datasets/<str:name>/pairs/", views.DatasetPairsApi.as_view(), name="dataset-pairs"),
    path("datasets/<str:name>/pairs/verify/", views.DatasetPairsVerifyApi.as_view(), name="dataset-pairs-verify"),
    path("profiles/", views.ProfileListApi.as_view(), name="profile-list"),
    path("profiles/<int:profile_id>/", views.ProfileDetailApi.as_view(), name="profile-detail"),
    path("profiles/<int:profile_id>/references/", views.ReferenceListApi.as_view(), name="reference-list"),
    path("profiles/<int:profile_id>/references/<int:reference_id>/", views.ReferenceDetailApi.as_view(),
         name="reference-detail"),
    path("profiles/<int:profile_id>/references/<int:reference_id>/image/", views.ReferenceImageApi.as_view(),
         name="reference-image"),
    path("profiles/<int:profile_id>/verify/", views.ProfileVerifyApi.as_view(), name="profile-verify"),
]
