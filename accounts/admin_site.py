from django.contrib.admin import AdminSite

from .forms import ThrottledAdminAuthenticationForm
from .roles import EDITOR, has_role


class FacewebAdminSite(AdminSite):
    site_header = "faceweb administration"
    site_title = "faceweb admin"
    # The same failed-login throttle as /login/.
    login_form = ThrottledAdminAuthenticationForm

    def has_permission(self, request):
        # Editors and above use the admin; what each sees there is then decided by the
        # model permissions their role's group carries.
        return request.user.is_active and (request.user.is_staff or has_role(request.user, EDITOR))
