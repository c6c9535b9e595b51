from urllib.parse import quote

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.urls import reverse

from accounts.forms import TOO_MANY_FAILURES

PASSWORD = "correct horse battery"


@pytest.fixture
def alice(make_user):
    return make_user("viewer", "alice")


def log_in(client, username="alice", password=PASSWORD, address="10.0.0.1", **extra):
    return client.post(
        reverse("login"), {"username": username, "password": password, **extra},
        REMOTE_ADDR=address,
    )  # fmt: skip


def is_logged_in(client):
    return "_auth_user_id" in client.session


def test_the_right_password_logs_in(client, alice):
    response = log_in(client)
    assert response.status_code == 302 and is_logged_in(client)


def test_after_five_failures_even_the_right_password_is_refused(client, alice):
    for _ in range(5):
        assert TOO_MANY_FAILURES not in log_in(client, password="wrong").content.decode()
    response = log_in(client)
    assert response.status_code == 200
    assert TOO_MANY_FAILURES in response.content.decode()
    assert not is_logged_in(client)


def test_failures_for_one_username_from_many_addresses_are_counted_together(client, alice):
    for n in range(5):
        log_in(client, password="wrong", address=f"10.0.0.{n}")
    assert TOO_MANY_FAILURES in log_in(client, address="10.0.9.9").content.decode()


def test_failures_from_one_address_for_many_usernames_are_counted_together(client, alice):
    for n in range(5):
        log_in(client, username=f"guess{n}", password="wrong")
    assert TOO_MANY_FAILURES in log_in(client).content.decode()
    assert not is_logged_in(client)


def test_other_users_elsewhere_can_still_log_in(client, alice, make_user):
    make_user("viewer", "bob")
    for _ in range(5):
        log_in(client, password="wrong")
    assert log_in(client, username="bob", address="10.0.0.2").status_code == 302


def test_a_successful_login_clears_the_users_failures(client, alice):
    for _ in range(4):
        log_in(client, password="wrong", address="10.0.0.1")
    log_in(client, address="10.0.0.2")
    client.logout()
    for _ in range(4):
        log_in(client, password="wrong", address="10.0.0.3")
    assert log_in(client, address="10.0.0.4").status_code == 302


def test_next_on_this_site_is_followed(client, alice):
    response = log_in(client, next="/training/")
    assert response.url == "/training/"


OFF_SITE = [
    "https://evil.example/",
    "//evil.example/",
    "https:///evil.example/",
    "http:evil.example",
    "/\\evil.example/",
    "\\\\evil.example/",
    " https://evil.example/",
    "https://testserver@evil.example/",
    "https://evil.example/?x=https://testserver/",
    "javascript:alert(document.cookie)",
    "/\t/evil.example",
]


@pytest.mark.parametrize("target", OFF_SITE)
def test_next_pointing_off_site_is_ignored(client, alice, target):
    response = log_in(client, next=target)
    assert response.status_code == 302
    assert response.url == resolve_url(settings.LOGIN_REDIRECT_URL)


@pytest.mark.parametrize("target", OFF_SITE[:3])
def test_next_in_the_login_address_pointing_off_site_is_ignored(client, alice, target):
    response = client.post(
        f"{reverse('login')}?next={quote(target)}",
        {"username": "alice", "password": PASSWORD},
    )
    assert response.status_code == 302
    assert response.url == resolve_url(settings.LOGIN_REDIRECT_URL)


@pytest.mark.parametrize("target", OFF_SITE[:3])
def test_logging_out_never_sends_anyone_off_site(client, alice, target):
    client.force_login(alice)
    response = client.post(f"{reverse('logout')}?next={quote(target)}")
    assert response.status_code == 302
    assert "evil.example" not in response.url
    assert not is_logged_in(client)
