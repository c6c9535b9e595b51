"""Role checks for API views, built on accounts.roles so the API and the pages agree.

An anonymous caller gets 401 (DRF turns a failed permission into NotAuthenticated when
nobody authenticated); a caller below the role gets 403.
"""

from rest_framework.permissions import BasePermission

from accounts.roles import EDITOR, TRAINER, VIEWER, has_role


class HasRole(BasePermission):
    role = None

    @property
    def message(self):
        return f"This needs the {self.role} role."

    def has_permission(self, request, view):
        return has_role(request.user, self.role)


class IsViewer(HasRole):
    role = VIEWER


class IsEditor(HasRole):
    role = EDITOR


class IsTrainer(HasRole):
    role = TRAINER
