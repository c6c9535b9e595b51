"""'Do you know this person?': unknown faces grouped, and a group named in one step."""

import pytest
from django.urls import reverse

from identities.grouping import group_similar, unknown_groups
from identities.models import Identity, PredictionFace
from tests.identities.recorded import face, record
from training import services

# Two people as the model sees them, and a third unlike both.
ALICE = [[1.0, 0.1, 0.0], [0.9, 0.2, 0.0], [1.0, 0.0, 0.1]]
BOB = [[0.0, 1.0, 0.1], [0.1, 0.9, 0.0]]
CAROL = [[0.0, 0.0, 1.0]]


def test_similar_faces_are_grouped_and_a_face_like_no_other_stands_alone():
    groups = group_similar(ALICE + BOB + CAROL, threshold=0.5)
    assert groups == [[0, 1, 2], [3, 4], [5]]


def test_nothing_to_group_gives_no_groups():
    assert group_similar([], threshold=0.5) == []


@pytest.fixture
def unknowns(member):
    """Six unknown faces with base-network embeddings (the vectors above); their rows."""
    rows = []
    for index, vector in enumerate(ALICE + BOB + CAROL):
        row = record(member, face(None, 0.2, embedding=vector), index=index).face_rows.get()
        PredictionFace.objects.filter(pk=row.pk).update(
            embedding_model=services.base_embedding_model()
        )
        rows.append(row)
    return rows


def test_the_page_shows_the_unknown_faces_grouped(member_client, unknowns):
    response = member_client.get(reverse("identities:unknown_faces"))
    groups = [sorted(f.pk for f in group) for group in response.context["groups"]]
    assert groups == [
        sorted(r.pk for r in unknowns[:3]),
        sorted(r.pk for r in unknowns[3:5]),
        [unknowns[5].pk],
    ]
    assert "3 similar faces" in response.content.decode()


def test_a_group_becomes_a_new_person_in_one_step(member_client, unknowns):
    faces = [r.pk for r in unknowns[:3]]
    response = member_client.post(
        reverse("identities:unknown_faces"), {"faces": faces, "new_name": "Alice Liddell"}
    )
    assert response.status_code == 302
    alice = Identity.objects.get(name="Alice Liddell")
    assert alice.images.count() == 3
    assert len(unknown_groups()) == 2  # Bob's pair and Carol


def test_a_group_is_added_to_an_existing_person(member_client, unknowns):
    bob = Identity.objects.create(name="Bob")
    faces = [r.pk for r in unknowns[3:5]]
    member_client.post(reverse("identities:unknown_faces"), {"faces": faces, "identity": bob.pk})
    assert bob.images.count() == 2
    assert set(PredictionFace.objects.filter(pk__in=faces).values_list("review", flat=True)) == {
        "corrected"
    }


def test_a_group_without_a_name_changes_nothing(member_client, unknowns):
    response = member_client.post(
        reverse("identities:unknown_faces"), {"faces": [unknowns[0].pk]}, follow=True
    )
    assert "Pick a person" in response.content.decode()
    assert not Identity.objects.exists()
    assert all(row.is_pending for row in PredictionFace.objects.all())


def test_faces_that_are_not_offered_cannot_be_slipped_into_a_group(member_client, member, unknowns):
    sure = record(member, face(Identity.objects.create(name="Eve"), 0.99)).face_rows.get()
    member_client.post(
        reverse("identities:unknown_faces"), {"faces": [sure.pk], "new_name": "Mallory"}
    )
    assert not Identity.objects.filter(name="Mallory").exists()
    assert PredictionFace.objects.get(pk=sure.pk).is_pending


def test_a_viewer_cannot_see_or_name_groups(client, make_user, unknowns):
    client.force_login(make_user("viewer"))
    url = reverse("identities:unknown_faces")
    assert client.get(url).status_code == 403
    assert client.post(url, {"faces": [unknowns[0].pk], "new_name": "X"}).status_code == 403
    assert not Identity.objects.exists()
