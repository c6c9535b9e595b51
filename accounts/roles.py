"""The four roles, each including the rights of the ones before it.

viewer: identify, see own predictions. editor: also manage identities and photos.
trainer: also start and cancel training, activate model versions. admin: also users, roles,
settings, every prediction and the audit trail. Roles are Django groups (made by a
migration); a superuser is an admin.
"""

from functools import wraps

from django.core.exceptions import PermissionDenied

VIEWER, EDITOR, TRAINER, ADMIN = "viewer", "editor", "trainer", "admin"
ROLES = (VIEWER, EDITOR, TRAINER, ADMIN)


def role_of(user):
    """The highest role a user holds, or None (anonymous, inactive, or no role)."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    cached = getattr(user, "_faceweb_role", False)
    if cached is False:
        names = set(user.groups.values_list("name", flat=True))
        cached = next((role for role in reversed(ROLES) if role in names), None)
        user._faceweb_role = cached
    return cached


def has_role(user, role):
    """True when the user's role is `role` or one above it."""
    held = role_of(user)
    return held is not None and ROLES.index(held) >= ROLES.index(role)


def role_required(role):
    """View decorator: 403 for a logged-in user below `role` (login itself is enforced by
    the login middleware)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, role):
                raise PermissionDenied(f"This page needs the {role} role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def set_role(user, role):
    """Give a user exactly one role (None removes every role)."""
    from django.contrib.auth.models import Group

    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    if role is not None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        # The migration makes the groups with their permissions; get_or_create only matters
        # for a database that was flushed since (some tests).
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    user.__dict__.pop("_faceweb_role", None)
