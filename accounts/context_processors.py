from .roles import ADMIN, EDITOR, TRAINER, VIEWER, has_role, role_of


def roles(request):
    """What the signed-in user may do, for navigation and buttons."""
    user = request.user
    return {
        "user_role": role_of(user),
        "can_identify": has_role(user, VIEWER),
        "can_edit": has_role(user, EDITOR),
        "can_train": has_role(user, TRAINER),
        "is_admin": has_role(user, ADMIN),
    }
