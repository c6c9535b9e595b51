"""Bulk imports run by a real Celery worker on Redis: one runs to its end, and one whose
worker process is killed with SIGKILL mid-way is resumed and ends with every photo once."""

import os
import signal

import pytest

from tests.imports.zips import people_zip
from tests.integration.test_crashes import children, wait_for

pytestmark = pytest.mark.integration

PREVIEW = """
from django.contrib.auth import get_user_model
from django.core.files import File
from accounts.roles import set_role
from imports import services
user = get_user_model().objects.create_user("importer")
set_role(user, "editor")
with open({zip_path!r}, "rb") as handle:
    bulk = services.prepare_zip(File(handle, name="people.zip"), user)
print(bulk.pk)
"""

REPORT = """
import json
from identities.models import FaceImage
from imports.models import BulkImport
from imports.services import progress
bulk = BulkImport.objects.get()
images = FaceImage.objects.values_list("identity_id", "sha256")
print(json.dumps(progress(bulk) | {
    "status": bulk.status, "attempts": bulk.attempts, "error": bulk.error,
    "photos": len(images), "distinct_photos": len(set(images)),
}))
"""

CONFIRM = """
from imports.models import BulkImport
from imports.services import confirm_import
bulk = BulkImport.objects.get()
confirm_import(bulk, bulk.created_by)
"""

# Confirms the import, then watches it from one process (no start-up time between two looks)
# and kills the worker's pool process as soon as a few files are done.
CONFIRM_AND_KILL = """
import os, signal, time
from imports.models import BulkImport, ImportFile
from imports.services import confirm_import
bulk = BulkImport.objects.get()
confirm_import(bulk, bulk.created_by)
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    done = ImportFile.objects.filter(state="added").count()
    if done >= 3:
        os.kill({pid}, signal.SIGKILL)
        print("killed-after", done, ImportFile.objects.filter(state="pending").count())
        break
    time.sleep(0.02)
"""


def shell(app, script):
    return app.manage("shell", "--no-imports", "-c", script).stdout.strip()


def report(app):
    import json

    return json.loads(shell(app, REPORT))


def wait_for_worker(app, seconds=90):
    wait_for(lambda: " ready." in app.worker_log(), seconds, "the worker to be ready")


@pytest.fixture
def previewed(app, tmp_path):
    zip_path = tmp_path / "people.zip"
    zip_path.write_bytes(people_zip(people=3, per_person=12))
    shell(app, PREVIEW.format(zip_path=str(zip_path)))
    return zip_path


def test_a_real_worker_imports_a_confirmed_zip(app, previewed):
    app.start_worker("-Q", "default")
    wait_for_worker(app)
    shell(app, CONFIRM)
    wait_for(lambda: report(app)["status"] == "succeeded", 120, "the import to finish")
    result = report(app)
    assert (result["added"], result["photos"], result["distinct_photos"]) == (36, 36, 36)


def test_killing_the_worker_process_mid_import_resumes_it_with_no_photo_lost_or_doubled(
    app, previewed
):
    worker = app.start_worker("-Q", "default")
    wait_for_worker(app)
    (child,) = children(worker.pid)  # prefork: the import runs in the pool's child
    killed = shell(app, CONFIRM_AND_KILL.replace("{pid}", str(child)))
    _, done, waiting = killed.split()
    assert int(waiting) > 0, "the import finished before the kill; make it bigger"
    # Celery hands the task of a lost process back to the queue; the worker's new pool
    # process resumes the import where it stopped.
    wait_for(lambda: report(app)["status"] == "succeeded", 120, "the import to be resumed")
    result = report(app)
    assert result["attempts"] == 2, app.worker_log()
    assert (result["added"], result["photos"], result["distinct_photos"]) == (36, 36, 36)


def test_a_worker_restarted_after_kill_9_finishes_the_import_it_left(app, previewed):
    worker = app.start_worker("-Q", "default", "--hostname", "import-crash@%h")
    wait_for_worker(app)
    killed = shell(app, CONFIRM_AND_KILL.replace("{pid}", str(worker.pid)))
    for pid in children(worker.pid):
        os.kill(pid, signal.SIGKILL)
    worker.wait()
    assert int(killed.split()[2]) > 0, "the import finished before the kill; make it bigger"
    assert report(app)["status"] == "running"  # nobody has noticed yet
    app.start_worker("-Q", "default", "--hostname", "import-crash@%h")
    wait_for(lambda: report(app)["status"] == "succeeded", 120, "the restarted worker")
    result = report(app)
    assert (result["added"], result["photos"], result["distinct_photos"]) == (36, 36, 36)
