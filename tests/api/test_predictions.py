import pytest
from django.urls import reverse

from identities.models import Prediction
from identities.uploads import save_jpeg
from tests.images import person_image


@pytest.fixture
def predictions(cast):
    """One identification by the viewer, one by the editor."""
    return {
        role: Prediction.objects.create(
            photo=save_jpeg("predictions", person_image(0, 1)),
            created_by=cast[role],
            faces=[
                {
                    "box": [1, 2, 3, 4],
                    "identity": None,
                    "identity_id": None,
                    "confidence": 0.4,
                    "score": 0.2,
                    "top_k": [],
                }
            ],
        )  # fmt: skip
        for role in ("viewer", "editor")
    }


def listed(client):
    return [p["id"] for p in client.get(reverse("api:prediction-list")).json()["results"]]


def test_a_viewer_sees_only_their_own_identifications(api, predictions):
    assert listed(api("viewer")) == [predictions["viewer"].pk]


def test_an_admin_sees_everyones(api, predictions):
    assert listed(api("admin")) == [predictions["editor"].pk, predictions["viewer"].pk]


def test_someone_elses_identification_and_photo_are_not_found(api, predictions):
    pk = predictions["editor"].pk
    viewer = api("viewer")
    for name in ("api:prediction-detail", "api:prediction-photo"):
        assert viewer.get(reverse(name, args=[pk])).status_code == 404


def test_a_prediction_shows_its_faces_and_serves_its_photo(api, predictions):
    pk = predictions["viewer"].pk
    viewer = api("viewer")
    body = viewer.get(reverse("api:prediction-detail", args=[pk])).json()
    assert body["faces"][0]["box"] == [1, 2, 3, 4]
    assert body["created_by"] == "viewer-user"
    photo = viewer.get(body["photo_url"])
    assert photo.status_code == 200 and photo["Content-Type"] == "image/jpeg"
