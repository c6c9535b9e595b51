"""Rights beyond a role, and what a password change ends."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def change_form(user, **changes):
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "groups": [g.pk for g in user.groups.all()],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2024-01-01",
        "date_joined_1": "00:00:00",
    }
    return data | changes


def test_an_admin_role_user_cannot_make_itself_superuser_or_staff(client, make_user):
    admin = make_user("admin", "boss")
    client.force_login(admin)
    url = reverse("admin:auth_user_change", args=[admin.pk])
    client.post(url, change_form(admin, is_superuser="on", is_staff="on"))
    admin.refresh_from_db()
    assert not admin.is_superuser and not admin.is_staff
    assert not admin.user_permissions.exists()


def test_an_admin_role_user_gives_roles_but_no_other_group(client, make_user):
    admin, viewer = make_user("admin", "boss"), make_user("viewer", "val")
    powerful = Group.objects.create(name="everything")
    client.force_login(admin)
    url = reverse("admin:auth_user_change", args=[viewer.pk])
    editor = Group.objects.get(name="editor")
    client.post(url, change_form(viewer, groups=[editor.pk, powerful.pk]))
    assert list(viewer.groups.values_list("name", flat=True)) == ["viewer"]  # form refused
    client.post(url, change_form(viewer, groups=[editor.pk]))
    assert list(viewer.groups.values_list("name", flat=True)) == ["editor"]


def test_an_admin_role_user_cannot_change_a_superusers_password(client, make_user):
    root = get_user_model().objects.create_superuser("root", "r@example.org", "old-pw-123456!")
    client.force_login(make_user("admin", "boss"))
    url = reverse("admin:auth_user_password_change", args=[root.pk])
    client.post(url, {"password1": "new-pw-98765!x", "password2": "new-pw-98765!x"})
    root.refresh_from_db()
    assert root.check_password("old-pw-123456!")


def test_a_superuser_still_grants_superuser(client, make_user):
    root = get_user_model().objects.create_superuser("root", "r@example.org", "old-pw-123456!")
    other = make_user("admin", "boss")
    client.force_login(root)
    url = reverse("admin:auth_user_change", args=[other.pk])
    client.post(url, change_form(other, is_superuser="on", is_staff="on"))
    other.refresh_from_db()
    assert other.is_superuser


def test_a_password_change_revokes_the_api_token(make_user):
    user = make_user("viewer", "alice")
    token = Token.objects.create(user=user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/v1/predictions/").status_code == 200
    user.set_password("a brand new password 42")
    user.save()
    assert api.get("/api/v1/predictions/").status_code == 401
    user.first_name = "Alice"
    Token.objects.create(user=user)
    user.save()  # other changes keep the new token
    assert Token.objects.filter(user=user).exists()


def test_a_password_reset_in_the_admin_revokes_the_token_too(client, make_user):
    target = make_user("viewer", "alice")
    Token.objects.create(user=target)
    client.force_login(make_user("admin", "boss"))
    url = reverse("admin:auth_user_password_change", args=[target.pk])
    response = client.post(url, {"password1": "new-pw-98765!x", "password2": "new-pw-98765!x"})
    assert response.status_code == 302
    assert not Token.objects.filter(user=target).exists()
