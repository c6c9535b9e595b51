"""The security promises as a browser sees them: pages and photos need login, a login never
sends the user off site, and a form on another site cannot post on the user's behalf."""

import pytest

from identities.models import Identity
from identities.uploads import add_face_image, clean_image
from tests.browser.conftest import log_in
from tests.images import jpeg_bytes

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_persons_page_opened_without_login_shows_the_login_page(page, live_server, shoot):
    # Photos themselves are checked with Django's client (tests/test_security.py): the test
    # live server answers /media/ from MEDIA_ROOT by itself, without faceweb's view.
    ada = Identity.objects.create(name="Ada")
    add_face_image(ada, clean_image(jpeg_bytes()))
    page.goto(live_server.url + ada.get_absolute_url())
    assert page.url.startswith(live_server.url + "/login/?next=")
    assert page.locator("#id_password").is_visible()
    assert "Ada" not in page.content()
    shoot("security-01-page-needs-login")


def test_logging_in_with_an_off_site_next_stays_on_faceweb(page, live_server, make_user, shoot):
    make_user("editor", "alice")
    log_in(page, live_server, "alice", "/login/?next=https://evil.example/")
    assert page.url == live_server.url + "/people/"
    shoot("security-02-login-stays-on-site")


def test_a_form_on_another_site_cannot_post_as_the_logged_in_user(
    page, live_server, make_user, shoot
):
    make_user("editor", "alice")
    log_in(page, live_server, "alice", "/login/")
    assert page.url == live_server.url + "/people/"
    # The attacker's page: a self-submitting form aimed at faceweb's "add a person", on a
    # blank page of its own (not faceweb's, whose Content-Security-Policy would block it).
    page.goto("about:blank")
    page.set_content(
        f'<form method="post" action="{live_server.url}/people/">'
        '<input name="name" value="Mallory"></form>'
        "<script>document.forms[0].submit()</script>"
    )
    page.wait_for_url(live_server.url + "/people/")
    page.wait_for_load_state()
    shoot("security-03-cross-site-post-refused")
    assert not Identity.objects.filter(name="Mallory").exists()
    assert "CSRF verification failed" in page.content()
    assert "Mallory" not in page.content()
