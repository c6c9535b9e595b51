"""The login forms (the site's and the admin's), throttled so passwords cannot be guessed
in bulk, and so that nobody can lock someone else out.

Failures are counted per (username, client address) in the Django cache (shared by every
web process when CACHE_URL points at Redis). After FREE_FAILURES, each further attempt for
that pair must wait a delay that doubles with every failure (up to MAX_DELAY_SECONDS);
an attempt made too early is refused without checking the password, so a right guess
tells nothing. A stranger guessing from elsewhere only delays their own address: the user
at theirs still logs in. Why not django-axes: its lockouts are per username or per
address or both, a fixed cool-off rather than growing delays; this is the one rule here,
in forty lines.
"""

import hashlib
import math
import time

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError

from .addresses import client_address

FREE_FAILURES = 4
FIRST_DELAY_SECONDS = 5
MAX_DELAY_SECONDS = 15 * 60
# Failures are forgotten a day after the last one.
FAILURE_MEMORY_SECONDS = 24 * 3600
TOO_MANY_FAILURES = "Too many failed attempts; wait {seconds} seconds and try again."


def delay_after(failures):
    """Seconds an attempt must wait after this many failures in a row."""
    if failures <= FREE_FAILURES:
        return 0
    return min(FIRST_DELAY_SECONDS * 2 ** (failures - FREE_FAILURES - 1), MAX_DELAY_SECONDS)


class ThrottleMixin:
    def clean(self):
        key = failure_key(self.request, self.cleaned_data.get("username") or "")
        failures, last = cache.get(key, (0, 0.0))
        wait = last + delay_after(failures) - time.time()
        if wait > 0:
            raise ValidationError(
                TOO_MANY_FAILURES.format(seconds=math.ceil(wait)), code="throttled"
            )
        try:
            return super().clean()
        except ValidationError:
            cache.set(key, (failures + 1, time.time()), FAILURE_MEMORY_SECONDS)
            raise

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        cache.delete(failure_key(self.request, user.get_username()))


class ThrottledAuthenticationForm(ThrottleMixin, AuthenticationForm):
    """The site's login form."""


class ThrottledAdminAuthenticationForm(ThrottleMixin, AdminAuthenticationForm):
    """/admin/login/, under the same rule."""


def failure_key(request, username):
    """The cache key of one (username, client address) pair."""
    # Hashed: usernames may hold characters some cache backends refuse in keys.
    pair = f"{username.strip().casefold()}\n{client_address(request) if request else ''}"
    return "login-failures:" + hashlib.sha256(pair.encode()).hexdigest()
