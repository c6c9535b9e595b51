"""The login form, refused after repeated failures so passwords cannot be guessed in bulk."""

import hashlib

from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError

MAX_FAILED_LOGINS = 5
FAILED_LOGIN_WINDOW_SECONDS = 15 * 60
TOO_MANY_FAILURES = "Too many failed attempts; try again in a few minutes."


class ThrottledAuthenticationForm(AuthenticationForm):
    """Counts failed logins per username and per client address (in the Django cache).

    After MAX_FAILED_LOGINS failures within the window, either count refuses the next
    attempts without checking the password, so even a right guess tells nothing. The
    window starts at the first failure; waiting it out lifts the block.
    """

    def clean(self):
        keys = failure_keys(self.request, self.cleaned_data.get("username") or "")
        if any(cache.get(key, 0) >= MAX_FAILED_LOGINS for key in keys):
            raise ValidationError(TOO_MANY_FAILURES, code="throttled")
        try:
            return super().clean()
        except ValidationError:
            for key in keys:
                count_failure(key)
            raise

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        # Only the account's own count: clearing the address's would let someone holding
        # one password reset it between guesses at other accounts.
        cache.delete(failure_keys(self.request, user.get_username())[0])


def failure_keys(request, username):
    """(cache key for this username, cache key for this client address)."""
    # Hashed: usernames may hold characters some cache backends refuse in keys.
    name = hashlib.sha256(username.strip().casefold().encode()).hexdigest()
    address = request.META.get("REMOTE_ADDR", "") if request else ""
    return f"login-failures:user:{name}", f"login-failures:ip:{address}"


def count_failure(key):
    cache.add(key, 0, FAILED_LOGIN_WINDOW_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, FAILED_LOGIN_WINDOW_SECONDS)
