"""Every page, for every role: the role it needs gets in, the role below gets 403, and
someone not logged in is sent to the login page."""

import pytest
from django.urls import reverse

from accounts.roles import ROLES
from identities.models import Identity, Prediction
from identities.templatetags.faceweb import private_url
from identities.uploads import add_face_image, clean_image
from tests.images import jpeg_bytes
from training.models import ModelVersion, TrainingJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def things():
    ada = Identity.objects.create(name="Ada")
    image = add_face_image(ada, clean_image(jpeg_bytes()))
    job = TrainingJob.objects.create()
    version = ModelVersion.objects.create(
        job=job, artifact="models/x.pt", sha256="0" * 64, architecture="resnet18",
        classes=[], dataset_hash="h",
    )  # fmt: skip
    return {"ada": ada, "image": image, "job": job, "version": version}


def pages(t):
    """(method, url, role needed) for every page."""
    return [
        ("get", reverse("identities:list"), "editor"),
        ("get", t["ada"].get_absolute_url(), "editor"),
        ("get", reverse("identities:edit", args=[t["ada"].slug]), "editor"),
        ("get", reverse("identities:delete", args=[t["ada"].slug]), "editor"),
        ("get", reverse("identities:choose_face", args=[t["image"].pk]), "editor"),
        ("post", reverse("identities:image_delete", args=[t["image"].pk]), "editor"),
        ("get", private_url(t["image"].image), "editor"),
        ("get", private_url(t["image"].face_crop), "editor"),
        ("get", reverse("identities:identify"), "viewer"),
        ("get", reverse("training:home"), "trainer"),
        ("get", reverse("training:job", args=[t["job"].pk]), "trainer"),
        ("get", reverse("training:job_status", args=[t["job"].pk]), "trainer"),
        ("post", reverse("training:job_cancel", args=[t["job"].pk]), "trainer"),
        ("post", reverse("training:version_activate", args=[t["version"].pk]), "trainer"),
        ("get", reverse("admin:accounts_auditevent_changelist"), "admin"),
        ("get", reverse("admin:auth_user_changelist"), "admin"),
        ("get", reverse("admin:identities_identity_changelist"), "editor"),
        ("get", reverse("admin:training_modelversion_changelist"), "trainer"),
    ]


def request(client, method, url):
    return getattr(client, method)(url)


def refused(response):
    # The admin sends users who may not use it at all to its own login page.
    if response.status_code == 302:
        return response.url.startswith(reverse("admin:login"))
    return response.status_code == 403


def test_the_needed_role_gets_in_and_the_one_below_does_not(client, make_user, things):
    users = {role: make_user(role) for role in ROLES}
    users[None] = make_user(None)
    for method, url, needed in pages(things):
        below = ROLES[ROLES.index(needed) - 1] if needed != "viewer" else None
        client.force_login(users[below])
        assert refused(request(client, method, url)), (url, below)
        client.force_login(users[needed])
        expected = 200 if method == "get" else 302
        assert request(client, method, url).status_code == expected, (url, needed)


def test_someone_not_logged_in_is_sent_to_login(client, things):
    for method, url, _ in pages(things):
        response = request(client, method, url)
        assert response.status_code == 302, url
        assert "login" in response.url, url


def test_home_takes_each_role_to_its_first_page(client, make_user):
    client.force_login(make_user("viewer"))
    assert client.get("/").url == reverse("identities:identify")
    client.force_login(make_user("editor"))
    assert client.get("/").url == reverse("identities:list")
    client.force_login(make_user(None))
    response = client.get("/")
    assert response.status_code == 403
    assert "no role yet" in response.content.decode()


def test_a_prediction_and_its_photo_are_for_the_one_who_asked_and_admins(client, make_user):
    owner, other, admin = make_user("viewer", "owner"), make_user("viewer"), make_user("admin")
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    name = default_storage.save("predictions/p.jpg", ContentFile(jpeg_bytes()))
    prediction = Prediction.objects.create(photo=name, created_by=owner, width=1, height=1)
    for user, allowed in ((owner, True), (admin, True), (other, False)):
        client.force_login(user)
        page = client.get(prediction.get_absolute_url()).status_code
        photo = client.get(private_url(prediction.photo)).status_code
        assert (page, photo) == ((200, 200) if allowed else (403, 404)), user
