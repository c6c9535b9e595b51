from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group
from django.http import HttpResponseBadRequest

from .models import AuditEvent
from .roles import ROLES

User = get_user_model()
# Rights beyond the four roles, which only a superuser may give (or take).
BEYOND_ROLES = ("is_superuser", "is_staff", "user_permissions")


class FacewebUserAdmin(UserAdmin):
    """Django's user admin, where an admin-role user manages roles but cannot make anyone
    (itself included) superuser or staff, give permissions beyond a role, or change a
    superuser's account."""

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += [f for f in BEYOND_ROLES if f not in fields]
        return fields

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups" and not request.user.is_superuser:
            kwargs["queryset"] = Group.objects.filter(name__in=ROLES)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, FacewebUserAdmin)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_name", "action", "target_type", "target_repr"]
    list_filter = ["action", "target_type", "created_at"]
    search_fields = ["actor_name", "target_repr", "action"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def changelist_view(self, request, extra_context=None):
        # The date drill-down computes the next year, month or day: year 9999 overflows
        # Python's dates. Django turns a malformed date into a redirect but not this.
        try:
            response = super().changelist_view(request, extra_context)
            if hasattr(response, "render"):
                response.render()
            return response
        except (ValueError, OverflowError):
            return HttpResponseBadRequest(
                "That date is outside the dates the audit trail can show (years 1 to 9998).",
                content_type="text/plain; charset=utf-8",
            )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
