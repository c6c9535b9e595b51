"""Every endpoint, for the cast: the role it needs gets in, the role just below gets 403, and a
caller without credentials gets 401 with a WWW-Authenticate header. The endpoints are the
URL resolver's: a new one without a declared role fails test_every_api_route_has_a_role."""

import hashlib

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLResolver, get_resolver, reverse

from api.views import NotFound
from identities.models import IdentifyBatch, Identity, PredictionFace
from identities.uploads import add_face_image, clean_image
from imports.models import BulkImport
from tests.api.conftest import ROLE_BELOW
from tests.identities.recorded import face, record
from tests.images import jpeg_bytes
from tests.imports.zips import people_zip
from training.models import ModelVersion, TrainingJob


@pytest.fixture
def things(cast, api):
    """Two people with two usable photos each (enough to train), a job, a model version, an
    identification and a batch of photos sent by the viewer, and an import previewed."""
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
    # The viewer's: an identification with an unknown face, and a batch of photos.
    prediction = record(cast["viewer"], face(None, 0.2))
    batch = IdentifyBatch.objects.create(created_by=cast["viewer"], source_name="team.zip")
    sent = api("editor").post(reverse("api:import-list"), people_archive(), format="multipart")
    bulk = BulkImport.objects.get(pk=sent.json()["id"])
    return {
        "ada": ada, "bob": bob, "image": images[0], "job": job, "version": version,
        "pred": prediction, "batch": batch, "import": bulk,
    }  # fmt: skip


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


def one_photo(t):
    return {"images": [photo()]}


def people_archive(t=None):
    return {"archive": SimpleUploadedFile("people.zip", people_zip(2, 2), "application/zip")}


def bulk(t):
    return {"pk": t["import"].pk}


def batch(t):
    return {"pk": t["batch"].pk}


def first_face(t):
    return {"pk": t["pred"].pk, "index": 0}


def reject_the_face(t):
    return {"faces": [PredictionFace.objects.get(prediction=t["pred"]).pk], "decision": "reject"}


# (method, url name, url kwargs, body, role needed, status when allowed)
ENDPOINTS = [
    ("get", "identity-list", nothing, None, "editor", 200),
    ("post", "identity-list", nothing, lambda t: {"name": "Grace"}, "editor", 201),
    ("get", "identity-detail", ada, None, "editor", 200),
    ("patch", "identity-detail", ada, lambda t: {"notes": "x"}, "editor", 200),
    ("delete", "identity-detail", ada, None, "editor", 204),
    ("get", "identity-images", ada_images, None, "editor", 200),
    ("post", "identity-images", ada_images, one_photo, "editor", 201),
    ("get", "image-detail", image, None, "editor", 200),
    ("delete", "image-detail", image, None, "editor", 204),
    ("get", "image-file", thumbnail, None, "editor", 200),
    ("post", "identity-merge", ada, lambda t: {"into": t["bob"].pk}, "editor", 200),
    ("post", "identity-split", ada,
     lambda t: {"images": [t["image"].pk], "name": "Ada Two"}, "editor", 201),
    ("post", "identity-move", ada,
     lambda t: {"images": [t["image"].pk], "to": t["bob"].pk}, "editor", 200),
    ("post", "import-list", nothing, people_archive, "editor", 201),
    ("get", "import-detail", bulk, None, "editor", 200),
    ("post", "import-confirm", bulk, None, "editor", 202),
    ("get", "job-list", nothing, None, "trainer", 200),
    ("post", "job-list", nothing, lambda t: {"epochs": 1}, "trainer", 201),
    ("get", "job-detail", job, None, "trainer", 200),
    ("post", "job-cancel", job, None, "trainer", 200),
    ("get", "version-list", nothing, None, "trainer", 200),
    ("get", "version-detail", version, None, "trainer", 200),
    ("post", "version-activate", version, None, "trainer", 200),
    # 409: past the role check, but no model is active here; test_identify has the 200s.
    ("post", "identify", nothing, lambda t: {"image": photo()}, "viewer", 409),
    ("post", "identify-batches", nothing, one_photo, "viewer", 409),
    ("get", "identify-batch", batch, None, "viewer", 200),
    ("get", "prediction-list", nothing, None, "viewer", 200),
    ("get", "prediction-detail", prediction, None, "viewer", 200),
    ("get", "prediction-photo", prediction, None, "viewer", 200),
    ("post", "face-review", first_face, lambda t: {"decision": "reject"}, "editor", 200),
    ("get", "review-queue", nothing, None, "editor", 200),
    ("post", "review-bulk", nothing, reject_the_face, "editor", 200),
]  # fmt: skip
# Any logged-in user or token, with a role or none: they name no person.
FOR_ANY_USER = {"schema", "docs"}
IDS = [f"{method} {name}" for method, name, *_ in ENDPOINTS]


def call(client, endpoint, things):
    method, name, kwargs, body, _, _ = endpoint
    url = reverse(f"api:{name}", kwargs=kwargs(things))
    data = body(things) if body else None
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
    assert BulkImport.objects.get().status == BulkImport.Status.PREVIEW
    assert IdentifyBatch.objects.count() == 1
    assert PredictionFace.objects.get().review == PredictionFace.Review.PENDING


def api_routes(resolver=None, namespace=""):
    """(name, pattern) of every route under api/, as Django's URL resolver has them."""
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from api_routes(pattern, inner)
        elif namespace == "api:":
            yield pattern.name, pattern


def test_every_api_route_has_a_role():
    routes = list(api_routes())
    unnamed = [
        p
        for name, p in routes
        if not name and getattr(p.callback, "view_class", None) is not NotFound
    ]
    assert not unnamed, "name every API route, and give it a role in ENDPOINTS"
    declared = {name for _, name, *_ in ENDPOINTS} | FOR_ANY_USER
    assert {name for name, _ in routes if name} == declared


@pytest.mark.parametrize("name", sorted(FOR_ANY_USER))
def test_schema_and_docs_are_for_any_user_and_no_stranger(client, cast, name):
    client.force_login(cast["outsider"])
    assert client.get(reverse(f"api:{name}")).status_code == 200
    client.logout()
    assert client.get(reverse(f"api:{name}")).status_code in (302, 401)
