import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import AuditEvent


@pytest.fixture
def viewer(make_user):
    return make_user("viewer")


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


def profile(client):
    return client.get(reverse("accounts:profile")).content.decode()


def test_the_profile_page_shows_the_users_role(viewer_client):
    page = profile(viewer_client)
    assert "viewer-user" in page and "Role: <b>viewer</b>" in page


def test_a_user_without_a_role_is_told_so(client, make_user):
    client.force_login(make_user(None))
    assert "You have no role yet" in profile(client)


def test_strangers_are_sent_to_log_in(client):
    response = client.get(reverse("accounts:profile"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_a_new_token_is_shown_in_full_once(viewer_client, viewer):
    response = viewer_client.post(reverse("accounts:token_create"))
    assert response.url == reverse("accounts:profile")
    key = Token.objects.get(user=viewer).key
    assert key in profile(viewer_client)
    later = profile(viewer_client)
    assert key not in later and key[:6] in later
    assert AuditEvent.objects.get().action == "token.create"


def test_the_token_works_on_the_api(viewer_client, viewer):
    viewer_client.post(reverse("accounts:token_create"))
    api = APIClient(HTTP_AUTHORIZATION=f"Token {Token.objects.get(user=viewer).key}")
    assert api.get(reverse("api:prediction-list")).status_code == 200


def test_a_new_token_replaces_the_old_one(viewer_client, viewer):
    viewer_client.post(reverse("accounts:token_create"))
    old = Token.objects.get(user=viewer).key
    viewer_client.post(reverse("accounts:token_create"))
    assert Token.objects.get(user=viewer).key != old
    api = APIClient(HTTP_AUTHORIZATION=f"Token {old}")
    assert api.get(reverse("api:prediction-list")).status_code == 401


def test_a_revoked_token_is_refused_by_the_api(viewer_client, viewer):
    viewer_client.post(reverse("accounts:token_create"))
    key = Token.objects.get(user=viewer).key
    response = viewer_client.post(reverse("accounts:token_revoke"), follow=True)
    assert "was revoked" in response.content.decode()
    assert not Token.objects.filter(user=viewer).exists()
    api = APIClient(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get(reverse("api:prediction-list")).status_code == 401
    assert [e.action for e in AuditEvent.objects.order_by("id")] == ["token.create", "token.revoke"]


def test_tokens_are_only_made_and_revoked_by_post(viewer_client, viewer):
    assert viewer_client.get(reverse("accounts:token_create")).status_code == 405
    assert viewer_client.get(reverse("accounts:token_revoke")).status_code == 405
    assert not Token.objects.exists()


def test_a_token_is_made_for_the_logged_in_user_only(client, viewer, make_user):
    other = make_user("admin")
    client.force_login(viewer)
    client.post(reverse("accounts:token_create"), {"user": other.pk})
    assert list(Token.objects.values_list("user", flat=True)) == [viewer.pk]
