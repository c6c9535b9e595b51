"""The API of reviewing faces: the same decisions as the Review page, with the API's errors."""

import pytest
from django.urls import reverse

from identities.models import FaceImage, Identity, PredictionFace
from tests.identities.recorded import face, record


@pytest.fixture
def ada(db):
    return Identity.objects.create(name="Ada Lovelace")


@pytest.fixture
def unknown(cast):
    return record(cast["viewer"], face(None, 0.2))


def review(client, prediction, index=0, **body):
    url = reverse("api:face-review", args=[prediction.pk, index])
    return client.post(url, body, format="json")


def test_an_editor_names_a_face_and_it_becomes_a_training_photo(api, unknown, ada):
    response = review(api("editor"), unknown, decision="name", identity_id=ada.pk)
    assert response.status_code == 200
    body = response.json()
    assert (body["review"], body["reviewed_identity"], body["reviewed_by"]) == (
        "corrected", ada.pk, "editor-user",
    )  # fmt: skip
    assert body["training_images"] == [ada.images.get().pk]


def test_a_viewer_cannot_review(api, unknown, ada):
    response = review(api("viewer"), unknown, decision="name", identity_id=ada.pk)
    assert response.status_code == 403
    assert PredictionFace.objects.get().is_pending and not FaceImage.objects.exists()


def test_reviewing_twice_is_a_conflict(api, unknown):
    assert review(api("editor"), unknown, decision="reject").status_code == 200
    response = review(api("editor"), unknown, decision="name", new_identity_name="Ada")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_reviewed"
    assert not Identity.objects.exists()


def test_a_person_that_does_not_exist_is_refused(api, unknown):
    response = review(api("editor"), unknown, decision="name", identity_id=999)
    assert response.status_code == 400
    assert "identity_id" in response.json()["error"]["details"]
    assert PredictionFace.objects.get().is_pending


def test_an_unknown_decision_or_a_missing_name_is_refused(api, unknown):
    assert review(api("editor"), unknown, decision="maybe").status_code == 400
    response = review(api("editor"), unknown, decision="name")
    assert response.status_code == 400
    assert "Pick a person" in response.json()["error"]["message"]
    assert PredictionFace.objects.get().is_pending


def test_a_face_that_is_not_there_is_not_found(api, unknown):
    assert review(api("editor"), unknown, index=5, decision="reject").status_code == 404


def test_the_queue_lists_faces_to_review(api, cast, unknown, ada):
    record(cast["viewer"], face(ada, 0.99))
    response = api("editor").get(reverse("api:review-queue"))
    assert [f["prediction"] for f in response.json()["results"]] == [unknown.pk]
    assert api("viewer").get(reverse("api:review-queue")).status_code == 403


BULK = "/api/v1/review/answers/"


def test_an_editor_answers_many_faces_at_once_through_the_api(api, cast, ada):
    faces = [record(cast["viewer"], face(None, 0.2), index=i).face_rows.get() for i in range(2)]
    body = {"faces": [f.pk for f in faces], "decision": "name", "identity_id": ada.pk}
    response = api("editor").post(BULK, body, format="json")
    assert response.status_code == 200
    assert response.json() == {"identity": ada.pk, "answered": [f.pk for f in faces], "skipped": 0}
    assert ada.images.count() == 2


def test_the_api_refuses_a_person_and_a_different_new_name_together(api, unknown, ada):
    row = unknown.face_rows.get()
    body = {"faces": [row.pk], "decision": "name", "identity_id": ada.pk}
    response = api("editor").post(BULK, body | {"new_identity_name": "Alan"}, format="json")
    assert response.status_code == 400
    assert "also typed the new name" in str(response.json())
    response = review(api("editor"), unknown, decision="name", identity_id=ada.pk,
                      new_identity_name="Alan")  # fmt: skip
    assert response.status_code == 400
    assert PredictionFace.objects.get().is_pending and not Identity.objects.filter(name="Alan")


def test_a_bulk_answer_for_no_face_is_refused(api):
    response = api("editor").post(BULK, {"faces": [], "decision": "reject"}, format="json")
    assert response.status_code == 400
