"""Every endpoint, for the cast: the role it needs gets in, the role just below gets 403, and a
caller without credentials gets 401 with a WWW-Authenticate header."""

import hashlib

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from identities.models import Identity, Prediction
from identities.uploads import add_face_image, clean_image, save_jpeg
from tests.api.conftest import ROLE_BELOW
from tests.images import jpeg_bytes, person_image
from training.models import ModelVersion, TrainingJob


@pytest.fixture
def things(cast):
    """Two people with two usable photos each (enough to train), a job, a model version and
    an identification made by the viewer."""
    ada, bob = Identity.objects.create(name="Ada"), Identity.objects.create(name="Bob")
    images = [
        add_face_image(person, clean_image(jpeg_bytes(n, i)))
        for n, person in enumerate([ada, bob])
        for i in range(2)
    ]
    job = TrainingJob.objects.create()
    version = ModelVersion.objects.create(
        job=job, artifact=default_storage.save("models/x.pt", ContentFile(b"model")),
        sha256=hashlib.sha256(b"model").hexdigest(), architecture="resnet18",
        classes=[], dataset_hash="h",
    )  # fmt: skip
    prediction = Prediction.objects.create(
        photo=save_jpeg("predictions", person_image(0, 5)), created_by=cast["viewer"]
    )
    return {"ada": ada, "image": images[0], "job": job, "version": version, "pred": prediction}


def photo():
    return SimpleUploadedFile("new.jpg", jpeg_bytes(0, 3), content_type="image/jpeg")


# URL arguments and request bodies, made once the things exist.
def nothing(t):
    return {}


def ada(t):
    return {"pk": t["ada"].pk}


def ada_images(t):
    return {"identity_id": t["ada"].pk}


def image(t):
    return {"identity_id": t["ada"].pk, "pk": t["image"].pk}


def thumbnail(t):
    return image(t) | {"kind": "thumbnail"}


def job(t):
    return {"pk": t["job"].pk}


def version(t):
    return {"pk": t["version"].pk}


def prediction(t):
    return {"pk": t["pred"].pk}


def one_photo():
    return {"images": [photo()]}


# (method, url name, url kwargs, body, role needed, status when allowed)
ENDPOINTS = [
    ("get", "identity-list", nothing, None, "editor", 200),
    ("post", "identity-list", nothing, lambda: {"name": "Grace"}, "editor", 201),
    ("get", "identity-detail", ada, None, "editor", 200),
    ("patch", "identity-detail", ada, lambda: {"notes": "x"}, "editor", 200),
    ("delete", "identity-detail", ada, None, "editor", 204),
    ("get", "identity-images", ada_images, None, "editor", 200),
    ("post", "identity-images", ada_images, one_photo, "editor", 201),
    ("get", "image-detail", image, None, "editor", 200),
    ("delete", "image-detail", image, None, "editor", 204),
    ("get", "image-file", thumbnail, None, "editor", 200),
    ("get", "job-list", nothing, None, "trainer", 200),
    ("post", "job-list", nothing, lambda: {"epochs": 1}, "trainer", 201),
    ("get", "job-detail", job, None, "trainer", 200),
    ("post", "job-cancel", job, None, "trainer", 200),
    ("get", "version-list", nothing, None, "trainer", 200),
    ("get", "version-detail", version, None, "trainer", 200),
    ("post", "version-activate", version, None, "trainer", 200),
    # 409: past the role check, but no model is active here; test_identify has the 200s.
    ("post", "identify", nothing, lambda: {"image": photo()}, "viewer", 409),
    ("get", "prediction-list", nothing, None, "viewer", 200),
    ("get", "prediction-detail", prediction, None, "viewer", 200),
    ("get", "prediction-photo", prediction, None, "viewer", 200),
]
IDS = [f"{method} {name}" for method, name, *_ in ENDPOINTS]


def call(client, endpoint, things):
    method, name, kwargs, body, _, _ = endpoint
    url = reverse(f"api:{name}", kwargs=kwargs(things))
    data = body() if body else None
    if data and any(isinstance(v, list) or hasattr(v, "read") for v in data.values()):
        return getattr(client, method)(url, data, format="multipart")
    return getattr(client, method)(url, data, format="json")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_the_role_an_endpoint_needs_gets_in(api, things, endpoint):
    role, expected = endpoint[4], endpoint[5]
    response = call(api(role), endpoint, things)
    assert response.status_code == expected, response.content


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_the_role_just_below_gets_403_in_the_api_error_shape(api, things, endpoint):
    role = endpoint[4]
    response = call(api(ROLE_BELOW[role]), endpoint, things)
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "permission_denied",
        "message": f"This needs the {role} role.",
        "details": {},
    }


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_a_caller_without_credentials_gets_401_and_is_asked_for_a_token(api, things, endpoint):
    response = call(api(), endpoint, things)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["error"]["code"] == "not_authenticated"


def test_the_role_below_changes_nothing(api, things):
    for endpoint in ENDPOINTS:
        call(api(ROLE_BELOW[endpoint[4]]), endpoint, things)
    assert Identity.objects.count() == 2
    assert things["ada"].images.count() == 2
    assert TrainingJob.objects.get().status == TrainingJob.Status.QUEUED
    assert not ModelVersion.objects.filter(is_active=True).exists()
