"""Who may see an identification: one rule, Prediction.objects.visible_to, the same on every
page, photo, batch and API answer. An admin sees every one; anyone else with a role sees
their own; a user without a role (even one who lost it) and an anonymous visitor none."""

import numpy as np
import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.roles import ROLES
from identities.models import IdentifyBatch, Prediction, PredictionFace
from identities.review import NAME, review_face
from identities.templatetags.faceweb import private_url
from tests.identities.recorded import face, record
from training.services import base_embedding_model

pytestmark = pytest.mark.django_db

CAST = (*ROLES, None)  # None: a user without a role


@pytest.fixture
def users(make_user):
    return {role: make_user(role) for role in CAST}


@pytest.fixture
def asked(users, ada):
    """One identification asked by each user of the cast, with an unknown face to review."""
    return {
        role: record(user, face(None, 0.2), index=n) for n, (role, user) in enumerate(users.items())
    }


def expected(role, asked):
    """The rule, spelt out: the ids each role should see."""
    if role == "admin":
        return {prediction.pk for prediction in asked.values()}
    if role is None:
        return set()
    return {asked[role].pk}


@pytest.mark.parametrize("role", CAST)
def test_each_role_sees_exactly_what_the_rule_says(users, asked, role):
    visible = Prediction.objects.visible_to(users[role])
    assert set(visible.values_list("pk", flat=True)) == expected(role, asked)


def test_someone_not_logged_in_sees_nothing(asked):
    assert not Prediction.objects.visible_to(AnonymousUser()).exists()
    assert not IdentifyBatch.objects.visible_to(AnonymousUser()).exists()


@pytest.mark.parametrize("role", CAST)
def test_result_pages_and_photos_open_for_exactly_those(client, users, asked, role):
    client.force_login(users[role])
    for prediction in asked.values():
        allowed = prediction.pk in expected(role, asked)
        page = client.get(prediction.get_absolute_url()).status_code
        photo = client.get(private_url(prediction.photo)).status_code
        assert (page, photo) == ((200, 200) if allowed else (403, 404)), (role, prediction)


@pytest.mark.parametrize("role", CAST)
def test_face_crops_open_for_reviewers_and_for_whoever_sees_the_photo(client, users, asked, role):
    client.force_login(users[role])
    reviewer = role in ("editor", "trainer", "admin")
    for prediction in asked.values():
        crop = prediction.face_rows.get().face_crop
        allowed = reviewer or prediction.pk in expected(role, asked)
        assert client.get(private_url(crop)).status_code == (200 if allowed else 404)


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_the_history_lists_exactly_those(client, users, asked, role):
    client.force_login(users[role])
    response = client.get(reverse("identities:history"))
    assert {p.pk for p in response.context["page"].object_list} == expected(role, asked)


@pytest.mark.parametrize("role", ["viewer", "editor", "trainer", "admin"])
def test_the_api_lists_and_opens_exactly_those(users, asked, role):
    api = APIClient()
    api.force_authenticate(users[role])
    listed = api.get(reverse("api:prediction-list")).json()["results"]
    assert {row["id"] for row in listed} == expected(role, asked)
    for prediction in asked.values():
        allowed = prediction.pk in expected(role, asked)
        for name in ("api:prediction-detail", "api:prediction-photo"):
            response = api.get(reverse(name, args=[prediction.pk]))
            assert response.status_code == (200 if allowed else 404), (name, prediction)


@pytest.mark.parametrize("role", ["editor", "admin"])
def test_review_pages_link_to_the_whole_photo_only_when_it_may_be_opened(
    client, users, asked, role
):
    # Already embedded by the base network, so the unknown-faces page groups them as is.
    vector = np.ones(128, "<f4").tobytes()
    PredictionFace.objects.update(embedding=vector, embedding_model=base_embedding_model())
    client.force_login(users[role])
    for name in ("identities:review", "identities:unknown_faces"):
        page = client.get(reverse(name)).content.decode()
        linked = {p.pk for p in asked.values() if f'href="{p.get_absolute_url()}"' in page}
        assert linked == expected(role, asked), name


@pytest.mark.parametrize("role", ["editor", "admin"])
def test_a_persons_page_links_to_where_a_photo_came_from_only_when_it_may_be_opened(
    client, users, asked, ada, role
):
    for prediction in asked.values():
        review_face(prediction.face_rows.get(), NAME, users["editor"], identity=ada)
    client.force_login(users[role])
    page = client.get(ada.get_absolute_url()).content.decode()
    assert page.count('class="small muted provenance"') == len(asked)
    linked = {p.pk for p in asked.values() if f'href="{p.get_absolute_url()}"' in page}
    assert linked == expected(role, asked)


@pytest.mark.parametrize("role", CAST)
def test_a_batch_is_for_its_sender_and_admins(client, users, role):
    sender = users["viewer"]
    batch = IdentifyBatch.objects.create(created_by=sender, source_name="team.zip")
    allowed = role in ("viewer", "admin")
    assert IdentifyBatch.objects.visible_to(users[role]).exists() == allowed
    client.force_login(users[role])
    assert client.get(batch.get_absolute_url()).status_code == (200 if allowed else 403)
    api = APIClient()
    api.force_authenticate(users[role])
    response = api.get(reverse("api:identify-batch", args=[batch.pk]))
    assert response.status_code == (200 if allowed else 404 if role else 403)
