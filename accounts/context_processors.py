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


# The menu entry each page sits under; other pages of identities and imports are People's.
NAV_SECTIONS = {
    "identify": {"identities:identify", "identities:prediction", "identities:batch"},
    "history": {"identities:history"},
    "review": {"identities:review", "identities:recent_names", "identities:unknown_faces"},
}


def nav_section(request):
    """Which top menu entry to mark as the current one."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return {"nav_section": ""}
    for section, views in NAV_SECTIONS.items():
        if match.view_name in views:
            return {"nav_section": section}
    people = match.namespace in ("identities", "imports")
    return {"nav_section": "people" if people else match.namespace}
