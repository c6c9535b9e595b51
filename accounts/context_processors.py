from .roles import ADMIN, EDITOR, TRAINER, VIEWER, has_role, role_of


def csp_nonce(request):
    """The nonce that lets a page's own inline script run (accounts.middleware)."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}


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
