import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.throttling import ScopedRateThrottle

from accounts.models import AuditEvent
from identities.models import Prediction
from tests.conftest import stored_files
from tests.images import encode, group_photo, jpeg_bytes
from tests.training.conftest import TINY, enrolled, trained  # noqa: F401  (a fixture)
from training import services


def identify(client, data, **fields):
    photo = SimpleUploadedFile("photo.jpg", data, content_type="image/jpeg")
    return client.post(reverse("api:identify"), {"image": photo, **fields}, format="multipart")


def test_each_face_of_a_group_photo_comes_back_with_its_box(api, cast, trained):
    response = identify(api("viewer"), encode(group_photo([0, 1, 2])), strictness="lenient")
    assert response.status_code == 200
    body = response.json()
    prediction = Prediction.objects.get()
    assert body["prediction_id"] == prediction.pk
    assert body["model_version"] == services.active_version().pk
    assert body["latency_ms"] > 0
    assert len(body["faces"]) == 3
    for face in body["faces"]:
        x, y, w, h = face["box"]
        assert w > 20 and h > 20
        assert {"identity", "identity_id", "confidence", "top_k"} <= set(face)
        assert [c["identity"] for c in face["top_k"]] != []
    assert prediction.created_by == cast["viewer"]
    assert prediction.faces == body["faces"]
    assert AuditEvent.objects.get().action == "identify"


def test_top_k_limits_the_candidates_per_face(api, trained):
    body = identify(api("viewer"), jpeg_bytes(1, 99), top_k=1).json()
    (face,) = body["faces"]
    assert len(face["top_k"]) == 1
    assert face["confidence"] == face["top_k"][0]["probability"]


def test_identifying_without_an_active_model_is_a_conflict_and_stores_nothing(api, private_storage):
    response = identify(api("viewer"), jpeg_bytes())
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "no_active_model",
            "message": "No model is active yet: train one on the Training page first.",
            "details": {},
        }
    }
    assert not Prediction.objects.exists()
    assert stored_files(private_storage) == []


def test_a_text_file_is_refused_before_any_model_is_asked(api):
    response = identify(api("viewer"), b"not a photo at all")
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (
        "invalid_upload",
        "This file is not an image faceweb can read.",
    )


@pytest.mark.parametrize(
    ("fields", "field"), [({"strictness": "very"}, "strictness"), ({"top_k": 9}, "top_k")]
)
def test_bad_options_are_refused(api, fields, field):
    response = identify(api("viewer"), jpeg_bytes(), **fields)
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == [field]


def test_a_request_without_an_image_is_refused(api):
    response = api("viewer").post(reverse("api:identify"), {}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"image": ["No file was submitted."]}


def test_identify_is_throttled_per_user(api, monkeypatch):
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "identify", "2/min")
    viewer = api("viewer")
    assert [identify(viewer, jpeg_bytes()).status_code for _ in range(2)] == [409, 409]
    response = identify(viewer, jpeg_bytes())
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "throttled" and error["details"]["wait_seconds"] > 0
    assert int(response["Retry-After"]) > 0
    # Another user has their own allowance.
    assert identify(api("editor"), jpeg_bytes()).status_code == 409


def test_odd_but_valid_photos_are_identified_face_by_face(api, trained):
    from tests.identities.test_hostile_input import ODD_FILES

    viewer = api("viewer")
    for kind, (data, _, has_face) in ODD_FILES.items():
        response = identify(viewer, data, strictness="lenient")
        assert response.status_code == 200, (kind, response.json())
        if has_face is not None:
            assert len(response.json()["faces"]) == int(has_face), kind
    assert Prediction.objects.count() == len(ODD_FILES)


def test_the_photo_kept_from_an_identification_has_no_hidden_payload(api, trained, private_storage):
    from tests.identities.test_hostile_input import POLYGLOTS, SCRIPT

    for kind, data in POLYGLOTS.items():
        response = identify(api("viewer"), data)
        assert response.status_code == 200, kind
        prediction = Prediction.objects.get(pk=response.json()["prediction_id"])
        stored = (private_storage / prediction.photo.name).read_bytes()
        assert stored[:2] == b"\xff\xd8", kind
        assert SCRIPT not in stored and b"PK\x03\x04" not in stored, kind
