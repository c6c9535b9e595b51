from django.contrib import admin

from . import services
from .models import ModelVersion, TrainingJob


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "trigger", "created_by", "created_at", "finished_at"]
    list_filter = ["status", "trigger"]
    readonly_fields = [f.name for f in TrainingJob._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "is_active",
        "is_stale",
        "architecture",
        "accuracy",
        "created_at",
    ]
    list_filter = ["is_active", "is_stale"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields if f.name != "is_active"] + [
        "accuracy",
        "is_active",
    ]
    actions = ["activate"]

    # The metrics hold a float32 in [0, 1]: shown as a percentage, not 0.699999988079071.
    @admin.display(description="Val. accuracy")
    def accuracy(self, version):
        return as_percent(version.val_accuracy)

    @admin.action(description="Activate the selected version")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", level="error")
            return
        try:
            services.activate_version(queryset.get())
        except services.ModelUnavailable as exc:
            self.message_user(request, str(exc), level="error")
            return
        self.message_user(request, "Activated.")

    def has_add_permission(self, request):
        return False


def as_percent(fraction):
    """0.699999988079071 -> "70.0%"; None -> "—"."""
    if fraction is None:
        return "—"
    return f"{100 * fraction:.1f}%"
