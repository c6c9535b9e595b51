"""A batch of photos too large to identify in the request is identified by a real Celery
worker on Redis, and its page's progress reaches the end."""

import json

import pytest

from tests.images import write_people
from tests.integration.test_crashes import wait_for
from tests.integration.test_imports import shell, wait_for_worker

pytestmark = pytest.mark.integration

SEND = """
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from accounts.roles import set_role
from identities import batches
from tests.images import jpeg_bytes
user = get_user_model().objects.create_user("asker")
set_role(user, "viewer")
files = [SimpleUploadedFile(f"{n}.jpg", jpeg_bytes(n % 3, 20 + n)) for n in range(7)]
files.append(SimpleUploadedFile("bad.jpg", b"not a photo"))
batch, refused = batches.create_batch(files, user)
batches.start_batch(batch)
print(batch.pk, batch.status)
"""

REPORT = """
import json
from identities.batches import progress
from identities.models import IdentifyBatch, Prediction
batch = IdentifyBatch.objects.get()
print(json.dumps(progress(batch) | {"status": batch.status, "error": batch.error,
      "predictions": Prediction.objects.count(), "worker": batch.worker}))
"""


SENDS = """
from identities.models import IdentifyBatch
print(IdentifyBatch.objects.get().queue_sends)
"""


def report(app):
    return json.loads(shell(app, REPORT))


def test_a_real_worker_identifies_a_large_batch(app, tmp_path):
    people = write_people(tmp_path / "people", people=3, per_person=5)
    app.manage("import_faces", people)
    app.start_worker()
    wait_for_worker(app)
    trained = app.manage("train", "--wait", "--batch-size", "8", timeout=180, check=False)
    assert trained.returncode == 0, trained.stdout + trained.stderr + app.worker_log()

    _, status = shell(app, SEND).split()
    assert status in {"queued", "running", "succeeded"}
    wait_for(lambda: report(app)["status"] == "succeeded", 120, "the batch to be identified")
    result = report(app)
    assert (result["identified"], result["refused"], result["predictions"]) == (7, 1, 7)
    assert result["percent"] == 100 and result["worker"].startswith("test-")


def test_a_batch_whose_message_the_broker_lost_is_sent_again_by_beats_task(app, tmp_path):
    import redis

    people = write_people(tmp_path / "people", people=3, per_person=5)
    app.manage("import_faces", people)
    worker = app.start_worker()
    wait_for_worker(app)
    trained = app.manage("train", "--wait", "--batch-size", "8", timeout=180, check=False)
    assert trained.returncode == 0, trained.stdout + trained.stderr + app.worker_log()
    worker.terminate()
    worker.wait(30)

    shell(app, SEND)  # queued, its message waiting in Redis for a worker
    redis.Redis.from_url(app.env["CELERY_BROKER_URL"]).flushdb()  # a restart without persistence
    app.env["FACEWEB_QUEUE_LOST_SECONDS"] = "0"
    app.start_worker()
    wait_for(lambda: app.worker_log().count(" ready.") == 2, 90, "the new worker to be ready")
    assert report(app)["status"] == "queued"  # nothing left in the queue to deliver it

    shell(app, "from identities.tasks import requeue_lost_batches; requeue_lost_batches.delay()")
    wait_for(lambda: report(app)["status"] == "succeeded", 120, "the batch to be identified")
    result = report(app)
    assert (result["identified"], result["refused"], result["predictions"]) == (7, 1, 7)
    sends = shell(app, SENDS)
    assert sends == "2", sends
