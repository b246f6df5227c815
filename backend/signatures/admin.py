from __future__ import annotations

from django.contrib import admin

from . import services
from .models import Profile, Reference


class ReferenceInline(admin.TabularInline):
    model = Reference
    extra = 0
    can_delete = False
    fields = ["id", "width", "height", "content_type", "model_version", "created"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # references are uploaded through the API, which computes their embeddings


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "external_id", "owner", "created"]
    list_filter = ["owner"]
    search_fields = ["name", "external_id", "owner__username"]
    inlines = [ReferenceInline]

    def delete_model(self, request, obj: Profile) -> None:
        services.profile_delete(profile=obj)

    def delete_queryset(self, request, queryset) -> None:
        for profile in queryset:
            services.profile_delete(profile=profile)


@admin.register(Reference)
class ReferenceAdmin(admin.ModelAdmin):
    list_display = ["id", "profile", "width", "height", "model_version", "created"]
    list_filter = ["model_version"]
    readonly_fields = ["profile", "image", "content_type", "width", "height", "size_bytes", "sha256",
                       "embedding_dim", "model_version", "created"]
    exclude = ["embedding"]

    def has_add_permission(self, request) -> bool:
        return False

    def delete_model(self, request, obj: Reference) -> None:
        services.reference_delete(reference=obj)

    def delete_queryset(self, request, queryset) -> None:
        for reference in queryset:
            services.reference_delete(reference=reference)
