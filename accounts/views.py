from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token

from . import audit
from .forms import ThrottledAuthenticationForm
from .roles import role_of

# The new key is kept in the session for one page view: it is shown once, after creation.
NEW_TOKEN_SESSION_KEY = "accounts.new_token"


class LoginView(auth_views.LoginView):
    """Django's login (which only follows a `next` on this site), with failed attempts
    throttled."""

    form_class = ThrottledAuthenticationForm


def profile(request):
    token = Token.objects.filter(user=request.user).first()
    new_key = request.session.pop(NEW_TOKEN_SESSION_KEY, None)
    context = {
        "role": role_of(request.user),
        "token": token,
        "new_key": new_key if token and new_key == token.key else None,
    }
    return render(request, "accounts/profile.html", context)


@require_POST
def token_create(request):
    """Make a new API token, replacing the one the user had (one token per user)."""
    replaced = Token.objects.filter(user=request.user).delete()[0] > 0
    token = Token.objects.create(user=request.user)
    audit.record(request.user, "token.create", request.user, replaced=replaced)
    request.session[NEW_TOKEN_SESSION_KEY] = token.key
    return redirect("accounts:profile")


@require_POST
def token_revoke(request):
    if Token.objects.filter(user=request.user).delete()[0]:
        audit.record(request.user, "token.revoke", request.user)
        messages.success(request, "Your API token was revoked; programs using it are refused.")
    return redirect("accounts:profile")
