from urllib.parse import quote

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.urls import reverse

TOO_MANY_FAILURES = "Too many failed attempts"

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


def test_a_stranger_guessing_elsewhere_cannot_lock_the_user_out(client, alice):
    for _ in range(12):
        log_in(client, password="wrong", address="203.0.113.9")
    assert log_in(client, address="10.0.0.1").status_code == 302


def test_guesses_at_many_usernames_do_not_refuse_another_users_right_password(client, alice):
    for n in range(12):
        log_in(client, username=f"guess{n}", password="wrong")
    assert log_in(client).status_code == 302


def test_the_delay_grows_with_every_failure(client, alice, monkeypatch):
    import accounts.forms as forms

    now = [1000.0]
    monkeypatch.setattr(forms.time, "time", lambda: now[0])
    waits = []
    for _ in range(4):
        log_in(client, password="wrong")
    for _ in range(4):
        log_in(client, password="wrong")
        page = log_in(client).content.decode()  # too early: refused, not counted
        waits.append(int(page.split("wait ")[1].split(" seconds")[0]))
        now[0] += waits[-1]
    assert waits == [5, 10, 20, 40]
    assert log_in(client).status_code == 302  # the right password after the wait


def via_proxy(client, forwarded, password=PASSWORD):
    """A login through the proxy at 10.0.0.1, for a client it says is at `forwarded`."""
    data = {"username": "alice", "password": password}
    return client.post(
        reverse("login"), data, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded
    )


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(client, alice, settings):
    settings.FACEWEB_TRUSTED_PROXIES = 1
    for _ in range(6):
        via_proxy(client, "203.0.113.9", password="wrong")
    assert TOO_MANY_FAILURES in via_proxy(client, "203.0.113.9").content.decode()
    assert via_proxy(client, "198.51.100.7").status_code == 302


def test_a_forwarded_header_is_ignored_without_a_trusted_proxy(client, alice):
    for n in range(6):
        via_proxy(client, f"198.51.100.{n}", password="wrong")
    assert TOO_MANY_FAILURES in via_proxy(client, "1.2.3.4").content.decode()


def test_the_admin_login_is_throttled_by_the_same_rule(client, make_user):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", "r@example.org", PASSWORD)
    for _ in range(12):
        client.post("/admin/login/", {"username": "root", "password": "wrong"})
    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 200 and TOO_MANY_FAILURES in response.content.decode()
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
