"""Small things a new team noticed: numbers, counts, plurals and the icon read right."""

import re

import pytest
from django.urls import reverse

from identities.models import Identity
from identities.uploads import add_face_image, clean_image
from tests.images import encode, group_photo, jpeg_bytes
from training.models import ModelVersion, TrainingJob

pytestmark = pytest.mark.django_db


def version(accuracy):
    return ModelVersion.objects.create(
        artifact="models/x.pt", sha256="0" * 64, architecture="dlib-face-resnet",
        dataset_hash="d", classes=[], metrics={"val_accuracy": accuracy},
    )  # fmt: skip


@pytest.fixture
def ada():
    return Identity.objects.create(name="Ada Lovelace")


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("admin", "root"))
    return client


def test_the_admin_shows_a_models_accuracy_as_a_percentage(admin_client):
    version(0.699999988079071)
    page = admin_client.get(reverse("admin:training_modelversion_changelist")).content.decode()
    assert "70.0%" in page and "0.6999" not in page


def test_a_failed_job_shows_a_dash_not_a_bare_percent_sign(admin_client):
    TrainingJob.objects.create(params={}, status=TrainingJob.Status.FAILED, error="died")
    page = admin_client.get(reverse("training:home")).content.decode()
    row = page[page.index('href="/training/jobs/') :].split("</tr>")[0]
    assert "—" in row and ">%<" not in row


def test_the_people_list_counts_photos_as_the_persons_page_does(member_client, ada):
    for index in range(2):
        add_face_image(ada, clean_image(jpeg_bytes(0, index)))
    add_face_image(ada, clean_image(encode(group_photo([0, 1]))))  # several faces: not used
    listing = member_client.get(reverse("identities:list")).content.decode()
    person = member_client.get(ada.get_absolute_url()).content.decode()
    assert "3 photos · 1 not used" in listing
    assert "3 photos" in person and "1 not used for training" in person


def test_a_long_name_on_a_card_can_be_read_whole(member_client, make_user):
    Identity.objects.create(name="Donald Henry Rumsfeld-Wolfowitz the Third")
    page = member_client.get(reverse("identities:list")).content.decode()
    assert 'title="Donald Henry Rumsfeld-Wolfowitz the Third"' in page


def test_favicon_ico_leads_to_the_icon_that_every_page_links(client, member_client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response.url.endswith("favicon.svg")
    page = member_client.get(reverse("identities:list")).content.decode()
    assert 'rel="icon" href="/static/favicon.svg"' in page


def test_identifications_are_called_identifications(member):
    from tests.identities.recorded import face, record

    prediction = record(member, face())
    assert str(prediction) == f"Identification #{prediction.pk}"
    assert str(prediction.face_rows.get()) == f"Face 1 of identification #{prediction.pk}"


def test_the_person_page_promises_the_scheduled_retrain_only_when_there_is_one(
    client, make_user, ada, settings
):
    client.force_login(make_user("editor", "ed"))
    other = Identity.objects.create(name="Other")
    for person, identity in enumerate([ada, other]):
        for index in range(3):
            add_face_image(identity, clean_image(jpeg_bytes(person, index)))
    settings.FACEWEB_RETRAIN_SCHEDULE = ""
    page = client.get(ada.get_absolute_url()).content.decode()
    assert "a retrain is due" in page
    assert "Ask a trainer" in page and "scheduled retrain" not in page
    settings.FACEWEB_RETRAIN_SCHEDULE = "0 * * * *"
    page = client.get(ada.get_absolute_url()).content.decode()
    assert "The scheduled retrain will pick it up" in page


@pytest.mark.parametrize(
    ("path", "current"),
    [
        ("identities:list", "People"),
        ("identities:identify", "Identify"),
        ("identities:history", "History"),
        ("identities:review", "Review"),
        ("identities:recent_names", "Review"),
        ("training:home", "Training"),
    ],
)
def test_the_menu_marks_the_section_a_page_belongs_to(client, make_user, path, current):
    client.force_login(make_user("admin"))

    page = client.get(reverse(path)).content.decode()

    marked = re.findall(r'<a href="[^"]*" class="current">([^<]+)</a>', page)
    assert marked == [current]
