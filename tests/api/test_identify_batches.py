"""POST /api/v1/identify/batches/: several photos, or a zip, identified at once."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from identities import batches
from identities.models import IdentifyBatch, Prediction
from tests.api.test_identify import trained  # noqa: F401  (a fixture)
from tests.images import jpeg_bytes
from tests.training.conftest import enrolled  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db


def photo(name, person=0, index=7, data=None):
    return SimpleUploadedFile(name, data or jpeg_bytes(person, index), "image/jpeg")


def send(client, files, **fields):
    url = reverse("api:identify-batches")
    return client.post(url, {"images": files, **fields}, format="multipart")


def test_a_few_photos_come_back_identified(api, trained):
    response = send(api("viewer"), [photo("a.jpg", 0), photo("b.jpg", 1)], strictness="strict")
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["strictness"], body["progress"]["identified"]) == (
        "succeeded",
        "strict",
        2,
    )
    ids = [p["prediction"] for p in body["photos"]]
    assert sorted(ids) == sorted(Prediction.objects.values_list("pk", flat=True))
    prediction = api("viewer").get(reverse("api:prediction-detail", args=[ids[0]])).json()
    assert prediction["strictness"] == "strict" and prediction["too_small"] == []


def test_a_zip_and_a_bad_file_are_reported_per_file(api, trained):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x/one.jpg", jpeg_bytes(0, 8))
    zipped = SimpleUploadedFile("set.zip", buffer.getvalue(), "application/zip")
    response = send(api("viewer"), [zipped, photo("bad.jpg", data=b"text")])
    body = response.json()
    states = {p["name"]: (p["state"], p["reason"][:20]) for p in body["photos"]}
    assert states["set.zip/x/one.jpg"][0] == "done"
    assert states["bad.jpg"] == ("refused", "This file is not an ")


def test_when_no_file_can_be_used_the_answer_is_400_and_nothing_is_kept(api, trained):
    response = send(api("viewer"), [photo("a.jpg", data=b"text"), photo("b.jpg", data=b"x")])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_upload"
    assert [r["name"] for r in error["details"]["refused"]] == ["a.jpg", "b.jpg"]
    assert not IdentifyBatch.objects.exists()


def test_without_a_model_the_answer_is_409(api, db):
    response = send(api("viewer"), [photo("a.jpg"), photo("b.jpg", 1)])
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_active_model"


def test_a_large_batch_is_accepted_then_polled(api, trained, settings, monkeypatch):
    settings.FACEWEB_IDENTIFY_INLINE_PHOTOS = 1
    monkeypatch.setattr("identities.tasks.identify_batch.delay", lambda pk: None)
    response = send(api("viewer"), [photo("a.jpg", 0), photo("b.jpg", 1)])
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    batches.run_batch(body["id"], "w1")
    polled = api("viewer").get(body["url"]).json()
    assert (polled["status"], polled["progress"]["percent"]) == ("succeeded", 100)


def test_a_batch_is_only_its_senders_and_the_admins(api, cast, trained):
    body = send(api("viewer"), [photo("a.jpg", 0), photo("b.jpg", 1)]).json()
    assert api("editor").get(body["url"]).status_code == 404
    assert api("admin").get(body["url"]).status_code == 200
    assert api("outsider").get(body["url"]).status_code == 403
