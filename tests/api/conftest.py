import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.roles import ROLES

# Each role and the one just below it; "outsider" is a user with no role at all.
ROLE_BELOW = {"viewer": "outsider", "editor": "viewer", "trainer": "editor", "admin": "trainer"}


@pytest.fixture(autouse=True)
def fresh_cache(db):
    cache.clear()  # throttle counts


@pytest.fixture
def cast(make_user):
    """One user per role plus an outsider, each with an API token."""
    users = {role: make_user(role) for role in ROLES}
    users["outsider"] = make_user(None)
    for user in users.values():
        Token.objects.create(user=user)
    return users


@pytest.fixture
def api(cast):
    """api("editor") -> an APIClient authenticated with that user's token; api() -> anonymous."""

    def client_for(role=None):
        client = APIClient()
        if role is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {cast[role].auth_token.key}")
        return client

    return client_for
