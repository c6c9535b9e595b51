from django import forms
from django.contrib import admin
from django.utils.html import format_html

from .models import FaceImage, Identity, Prediction, clean_new_name
from .privacy import forget_identity
from .templatetags.faceweb import private_url


def thumbnail_tag(file, size=64):
    if not file:
        return "—"
    return format_html(
        '<img src="{}" width="{}" height="{}" style="object-fit:cover;border-radius:4px" alt="">',
        private_url(file),
        size,
        size,
    )


class FaceImageInline(admin.TabularInline):
    model = FaceImage
    extra = 0
    fields = ["preview", "status", "original_name", "width", "height", "uploaded_by", "uploaded_at"]
    readonly_fields = fields
    can_delete = True
    show_change_link = True

    @admin.display(description="Photo")
    def preview(self, obj):
        return thumbnail_tag(obj.thumbnail)

    def has_add_permission(self, request, obj=None):
        # New photos go through the upload page, which validates and re-encodes them.
        return False


class IdentityAdminForm(forms.ModelForm):
    """The admin's form keeps the same name rules as every other door."""

    class Meta:
        model = Identity
        fields = ["name", "notes", "is_active"]

    def clean_name(self):
        return clean_new_name(self.cleaned_data["name"], exclude_pk=self.instance.pk)


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    form = IdentityAdminForm
    list_display = ["cover", "name", "photo_count", "is_active", "created_at"]
    list_display_links = ["cover", "name"]
    list_filter = ["is_active"]
    search_fields = ["name", "notes"]
    readonly_fields = ["slug", "created_by", "created_at", "updated_at"]
    inlines = [FaceImageInline]

    @admin.display(description="")
    def cover(self, obj):
        return thumbnail_tag(obj.cover_thumbnail, 40)

    def get_queryset(self, request):
        return super().get_queryset(request).with_photo_counts()

    @admin.display(description="Photos", ordering="photo_count")
    def photo_count(self, obj):
        return obj.photo_count

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    # Deleting here forgets a person as the page does: identifications naming them go too.
    def delete_model(self, request, obj):
        forget_identity(obj, request.user)

    def delete_queryset(self, request, queryset):
        for identity in queryset:
            forget_identity(identity, request.user)


@admin.register(FaceImage)
class FaceImageAdmin(admin.ModelAdmin):
    list_display = ["preview", "identity", "status", "original_name", "uploaded_at"]
    list_filter = ["status"]
    search_fields = ["identity__name", "original_name", "sha256"]
    readonly_fields = [
        "preview",
        "image",
        "thumbnail",
        "sha256",
        "width",
        "height",
        "uploaded_by",
        "uploaded_at",
    ]
    list_select_related = ["identity"]

    @admin.display(description="Photo")
    def preview(self, obj):
        return thumbnail_tag(obj.thumbnail)

    def has_add_permission(self, request):
        return False


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "created_by", "model_version", "latency_ms", "created_at"]
    readonly_fields = [
        "photo",
        "width",
        "height",
        "model_version",
        "faces",
        "latency_ms",
        "created_by",
        "created_at",
    ]
    list_filter = ["created_at"]

    def has_add_permission(self, request):
        return False
