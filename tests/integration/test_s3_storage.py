"""Photos and models in an S3-compatible bucket: a real S3 server (moto's) on loopback."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.files.storage import storages

from identities.models import Identity
from identities.templatetags.faceweb import private_url
from identities.uploads import add_face_image, clean_image
from tests.images import jpeg_bytes

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
BUCKET = "faceweb-test"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    port = free_port()
    server = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def s3_storage(settings, s3_server):
    import boto3

    options = {
        "bucket_name": BUCKET,
        "endpoint_url": s3_server,
        "access_key": "test",
        "secret_key": "test",
        "region_name": "us-east-1",
        "default_acl": "private",
        "file_overwrite": False,
    }
    client = boto3.client(
        "s3", endpoint_url=s3_server, aws_access_key_id="test",
        aws_secret_access_key="test", region_name="us-east-1",
    )  # fmt: skip
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = settings.STORAGES | {
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
    }
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def bucket_keys(client):
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_photos_go_to_the_bucket_and_are_served_through_the_permission_check(
    s3_storage, client, make_user
):
    assert type(storages["default"]).__name__ == "S3Storage"
    image = add_face_image(Identity.objects.create(name="Ada"), clean_image(jpeg_bytes()))
    keys = bucket_keys(s3_storage)
    assert image.image.name in keys and image.face_crop.name in keys
    client.force_login(make_user("viewer"))
    assert client.get(private_url(image.image)).status_code == 403
    client.force_login(make_user("editor"))
    response = client.get(private_url(image.image))
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"


def test_a_model_trained_from_the_bucket_is_stored_there_and_identifies(
    s3_storage, django_capture_on_commit_callbacks
):
    from tests.images import person_image
    from tests.training.conftest import TINY
    from training import services
    from training.jobs import run_job
    from training.models import TrainingJob

    for person in range(2):
        identity = Identity.objects.create(name=f"Person {person}")
        for index in range(4):
            add_face_image(identity, clean_image(jpeg_bytes(person, index)))
    job = TrainingJob.objects.create(params=services.default_params(**TINY | {"epochs": 1}))
    assert run_job(job.pk) == TrainingJob.Status.SUCCEEDED
    version = services.active_version()
    assert version.artifact.name in bucket_keys(s3_storage)
    services.clear_model_cache()
    (face,) = services.identify(person_image(1, 9), strictness="lenient")["faces"]
    assert len(face["top_k"]) == 2
    with django_capture_on_commit_callbacks(execute=True):
        Identity.objects.all().delete()
    assert bucket_keys(s3_storage) == [version.artifact.name]
