"""Security checks over every URL the resolver knows, so a page added later is covered too:
pages and media need login, form posts need the CSRF token, and photos cannot be reached by
guessing their address without the right role."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse

from identities.models import Identity, Prediction
from identities.templatetags.faceweb import private_url
from identities.uploads import add_face_image, clean_image
from tests.images import jpeg_bytes

pytestmark = pytest.mark.django_db

# The only URLs anyone may use without logging in. A new one fails the tests below until it
# is added here on purpose.
PUBLIC = {"healthz", "readyz", "login", "logout", "favicon"}
SAMPLE_VALUES = {
    "IntConverter": 1,
    "Int64Converter": 1,
    "SlugConverter": "ada",
    "StringConverter": "thumbnail",
    "PathConverter": "faces/0123456789abcdef.jpg",
}


def every_url(patterns=None, namespace=None):
    """(name, url) for every named route, with sample values for its parameters. The admin
    (its own login) and unnamed routes are left out."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace != "admin":
                yield from every_url(pattern.url_patterns, pattern.namespace or namespace)
        elif pattern.name:
            name = f"{namespace}:{pattern.name}" if namespace else pattern.name
            converters = getattr(pattern.pattern, "converters", {})
            kwargs = {key: SAMPLE_VALUES[type(c).__name__] for key, c in converters.items()}
            yield name, reverse(name, kwargs=kwargs)


URLS = dict(every_url())
PRIVATE = sorted(name for name in URLS if name not in PUBLIC)
PAGES = [name for name in PRIVATE if not name.startswith("api:")]


def test_the_public_urls_are_only_the_login_and_the_probes():
    assert set(URLS) >= PUBLIC
    assert len(PRIVATE) > 40  # the walk over the resolver found the app's routes


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("name", PRIVATE)
def test_every_page_and_endpoint_needs_login(client, name, method):
    response = getattr(client, method)(URLS[name])
    if name.startswith("api:") and name != "api:docs":
        assert response.status_code == 401, (name, response.status_code)
    else:
        assert response.status_code == 302, (name, response.status_code)
        assert response.url.startswith(reverse("login") + "?next="), name


# --- CSRF ---------------------------------------------------------------------------------


@pytest.fixture
def csrf_client(make_user):
    """A logged-in admin whose browser does not send the CSRF token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("admin"))
    return client


@pytest.mark.parametrize("name", PAGES + ["login", "logout"])
def test_every_form_post_without_the_csrf_token_is_refused(csrf_client, name):
    response = csrf_client.post(URLS[name], {"name": "Mallory"})
    assert response.status_code == 403, name
    assert not Identity.objects.exists()


def test_the_same_form_post_with_the_csrf_token_goes_through(csrf_client):
    page = csrf_client.get(reverse("identities:list"))
    token = page.cookies["csrftoken"].value
    response = csrf_client.post(
        reverse("identities:list"), {"name": "Grace", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert Identity.objects.filter(name="Grace").exists()


def test_logging_in_from_another_site_without_the_token_is_refused(make_user):
    make_user("viewer", "alice")
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        reverse("login"), {"username": "alice", "password": "correct horse battery"}
    )
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


# --- media cannot be guessed into --------------------------------------------------------


@pytest.fixture
def photos(make_user):
    ada = add_face_image(Identity.objects.create(name="Ada"), clean_image(jpeg_bytes(0, 0)))
    owner = make_user("viewer", "owner")
    name = default_storage.save("predictions/4f1c.jpg", ContentFile(jpeg_bytes(1, 0)))
    prediction = Prediction.objects.create(photo=name, created_by=owner, width=1, height=1)
    return {"enrolment": ada, "prediction": prediction, "owner": owner}


def enrolment_urls(image):
    return [private_url(getattr(image, kind)) for kind in ("image", "thumbnail", "face_crop")]


@pytest.mark.parametrize("role", [None, "viewer"])
def test_photos_of_people_are_refused_to_users_without_the_editor_role(
    client, make_user, photos, role
):
    client.force_login(make_user(role, f"{role}-guesser"))
    for url in enrolment_urls(photos["enrolment"]):
        assert client.get(url).status_code == 403, url
    api_file = reverse(
        "api:image-file", args=[photos["enrolment"].identity_id, photos["enrolment"].pk, "image"]
    )
    assert client.get(api_file).status_code == 403


@pytest.mark.parametrize("role", [None, "viewer", "editor", "trainer"])
def test_someone_elses_identification_photo_cannot_be_fetched_by_its_address(
    client, make_user, photos, role
):
    client.force_login(make_user(role, f"{role}-guesser"))
    prediction = photos["prediction"]
    assert client.get(private_url(prediction.photo)).status_code == 404
    api_photo = reverse("api:prediction-photo", args=[prediction.pk])
    assert client.get(api_photo).status_code in (403, 404)


def test_the_owner_of_an_identification_does_get_its_photo(client, photos):
    client.force_login(photos["owner"])
    assert client.get(private_url(photos["prediction"].photo)).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "predictions/0000.jpg",  # a guessed name
        "faces/does-not-exist.jpg",
        "faces/../secret_key",
        "faces/%2e%2e/secret_key",
        "faces/..%2fsecret_key",
        "%2e%2e/%2e%2e/etc/passwd",
        "faces//etc/passwd",
        "faces/%2fetc%2fpasswd",
        "models/anything.pt",
        "secret_key",
        "faces/",
    ],
)
def test_guessed_or_crafted_media_paths_are_not_found_even_for_an_admin(client, make_user, path):
    client.force_login(make_user("admin"))
    assert client.get("/media/" + path).status_code == 404


def test_a_photo_cannot_be_fetched_through_another_persons_api_address(client, make_user, photos):
    client.force_login(make_user("editor"))
    image = photos["enrolment"]
    other = Identity.objects.create(name="Bob")
    url = reverse("api:image-file", args=[other.pk, image.pk, "image"])
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("path", ["faces/", "faces", "thumbs/", "crops/", "predictions/"])
def test_a_folder_of_photos_is_not_found_rather_than_an_error(client, make_user, photos, path):
    client.force_login(make_user("admin"))
    assert client.get("/media/" + path).status_code == 404


# --- odd requests get a 4xx, never a 500 ----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/admin/accounts/auditevent/?action=%00",
        "/admin/identities/identity/?q=a%00b",
        "/history/?since=%00",
        "/people/ada%00/",
        "/api/v1/identities/?search=%00",
    ],
)
def test_a_nul_byte_in_the_address_is_a_400(client, make_user, url):
    client.force_login(make_user("admin", "root"))
    response = client.get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


@pytest.mark.parametrize("year", ["9999", "99999", "0"])
def test_an_out_of_range_year_in_the_admin_date_filter_is_a_4xx(client, make_user, year):
    from accounts import audit

    admin = make_user("admin", "root")
    audit.record(admin, "x.test", admin)
    client.force_login(admin)
    for query in (f"created_at__year={year}", f"created_at__year={year}&created_at__month=12"):
        response = client.get(f"/admin/accounts/auditevent/?{query}")
        assert 300 <= response.status_code < 500, query


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing-here/", "/api/v1/identities/%0A/", "/api/v1/x%0A"]
)
def test_an_unknown_address_under_the_api_is_a_json_404(client, make_user, path):
    client.force_login(make_user("viewer"))
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- headers --------------------------------------------------------------------------------


def test_pages_carry_a_content_security_policy_and_are_never_cached(client, make_user):
    client.force_login(make_user("editor"))
    Identity.objects.create(name="Ada")
    for url in [
        reverse("identities:identify"),
        reverse("identities:list"),
        reverse("identities:history"),
        "/api/v1/identities/",
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        policy = response["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "'unsafe-inline'" not in policy.split("style")[0]
        assert "no-store" in response["Cache-Control"], url


def test_a_pages_own_script_runs_by_its_nonce_and_no_inline_handler_is_left(client, make_user):
    import re
    from pathlib import Path

    client.force_login(make_user("viewer"))
    response = client.get(reverse("identities:home"))
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    assert nonce != re.search(
        r"'nonce-([^']+)'", client.get(reverse("identities:home"))["Content-Security-Policy"]
    ).group(1)
    templates = Path(__file__).parent.parent / "templates"
    for template in templates.rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"\son[a-z]+=\"", text), template
        for tag in re.findall(r"<script[^>]*>", text):
            assert "src=" in tag or 'nonce="{{ csp_nonce }}"' in tag, (template, tag)


def test_photos_are_cached_privately_only(client, photos):
    client.force_login(photos["owner"])
    response = client.get(private_url(photos["prediction"].photo))
    assert response["Cache-Control"].startswith("private")
