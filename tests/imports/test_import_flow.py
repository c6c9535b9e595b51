"""Preview, confirm and run a bulk import; resume after a crash; who may do it; the API."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditEvent
from identities.models import FaceImage, Identity
from identities.people import identity_called
from imports import services, worker
from imports.models import BulkImport, ImportFile
from tests.images import encode, jpeg_bytes, shapes_image

from .zips import make_zip, people_zip

pytestmark = pytest.mark.django_db
State = ImportFile.State


@pytest.fixture
def previewed(post_zip):
    response = post_zip(people_zip(people=2, per_person=3))
    assert response.status_code == 302
    return BulkImport.objects.get()


def confirm(client, bulk, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/imports/{bulk.pk}/confirm/")
    assert response.status_code == 302
    return callbacks


def test_the_preview_lists_people_counts_and_new_or_existing(post_zip, member_client):
    Identity.objects.create(name="person 0")  # matched whatever the case
    bulk = BulkImport.objects.get(pk=post_zip(people_zip(2, 3)).url.split("/")[-2])
    assert [(p["name"], bool(p["identity_id"]), p["photos"]) for p in bulk.people] == [
        ("Person 0", True, 3),
        ("Person 1", False, 3),
    ]
    page = member_client.get(bulk.get_absolute_url()).content.decode()
    assert "6</b> photos will be added to <b>2</b> people" in page
    assert "(1 new, 1 already known)" in page
    assert FaceImage.objects.count() == 0  # nothing is imported before confirmation


def test_the_preview_skips_photos_already_stored_and_repeated_in_the_zip(post_zip, member):
    from identities.uploads import add_face_image, clean_image

    ada = Identity.objects.create(name="Ada")
    add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    zip_bytes = make_zip(
        {
            "Ada/old.jpg": jpeg_bytes(0, 0),
            "Ada/a.jpg": jpeg_bytes(0, 1),
            "Ada/b.jpg": jpeg_bytes(0, 1),
        }
    )
    post_zip(zip_bytes)
    reasons = dict(ImportFile.objects.values_list("path", "reason"))
    assert reasons == {
        "Ada/old.jpg": "Already among Ada's photos.",
        "Ada/a.jpg": "",
        "Ada/b.jpg": "The same photo as Ada/a.jpg.",
    }


def test_confirming_queues_the_import_and_running_it_adds_every_photo(
    member_client, previewed, django_capture_on_commit_callbacks
):
    callbacks = confirm(member_client, previewed, django_capture_on_commit_callbacks)
    assert len(callbacks) == 1  # run_import is sent once the confirmation is committed
    assert BulkImport.objects.get().status == BulkImport.Status.QUEUED
    assert worker.run_import(previewed.pk, worker="w1") == BulkImport.Status.SUCCEEDED
    assert FaceImage.objects.count() == 6
    assert set(Identity.objects.values_list("name", flat=True)) == {"Person 0", "Person 1"}
    assert services.progress(previewed)["added"] == 6
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert {"import.preview", "import.confirm", "import.finish"} <= set(actions)


def test_a_finished_import_keeps_its_record_but_neither_its_zip_nor_a_name_for_it(
    member_client, previewed, private_storage, django_capture_on_commit_callbacks
):
    confirm(member_client, previewed, django_capture_on_commit_callbacks)
    zip_name = BulkImport.objects.get().archive.name
    with django_capture_on_commit_callbacks(execute=True):
        worker.run_import(previewed.pk, worker="w1")
    bulk = BulkImport.objects.get()
    assert bulk.status == BulkImport.Status.SUCCEEDED
    assert not (private_storage / zip_name).exists()
    assert not bulk.archive  # no row points to a file that is gone


def test_a_second_delivery_of_a_finished_import_does_nothing(
    member_client, previewed, django_capture_on_commit_callbacks
):
    confirm(member_client, previewed, django_capture_on_commit_callbacks)
    worker.run_import(previewed.pk, worker="w1")
    assert worker.run_import(previewed.pk, worker="w1") is None
    assert worker.run_import(previewed.pk, worker="w2") is None
    assert FaceImage.objects.count() == 6


def test_a_delivery_to_another_worker_while_it_runs_does_nothing(previewed, member):
    services.confirm_import(previewed, member)
    assert worker.claim_import(previewed.pk, "w1")
    assert worker.run_import(previewed.pk, worker="w2") is None
    assert FaceImage.objects.count() == 0


def test_an_import_resumed_after_a_crash_loses_and_duplicates_nothing(previewed, member):
    services.confirm_import(previewed, member)
    assert worker.claim_import(previewed.pk, "w1")
    bulk = BulkImport.objects.get()
    # The worker died after adding two photos, the second before its file row was updated.
    zip_file = worker.open_zip(bulk.archive.open("rb"))
    members = zip_file.infolist()
    first, second = bulk.files.filter(state=State.PENDING).order_by("position")[:2]
    identity = identity_called(first.person, member)[0]
    state, reason, image = worker.import_file(
        bulk, identity, first, members[first.position], zip_file
    )
    ImportFile.objects.filter(pk=first.pk).update(state=state, face_image=image)
    worker.import_file(bulk, identity, second, members[second.position], zip_file)
    # Celery re-delivers the task to the same worker, whose new process resumes it.
    assert worker.run_import(previewed.pk, worker="w1") == BulkImport.Status.SUCCEEDED
    assert FaceImage.objects.count() == 6
    assert ImportFile.objects.filter(state=State.ADDED).count() == 6
    assert ImportFile.objects.get(pk=second.pk).face_image is not None


def test_a_worker_dying_again_and_again_on_an_import_stops_it_for_a_resume(previewed, member):
    services.confirm_import(previewed, member)
    for _ in range(worker.MAX_ATTEMPTS):
        assert worker.claim_import(previewed.pk, "w1")
    assert not worker.claim_import(previewed.pk, "w1")
    bulk = BulkImport.objects.get()
    assert bulk.status == BulkImport.Status.FAILED and "died 3 times" in bulk.error
    assert services.confirm_import(bulk, member)  # Resume
    assert worker.run_import(bulk.pk, "w2") == BulkImport.Status.SUCCEEDED
    assert FaceImage.objects.count() == 6


def test_an_import_whose_worker_went_silent_is_stopped_and_can_be_resumed(
    previewed, member, member_client, settings
):
    settings.FACEWEB_IMPORT_STALE_SECONDS = 0
    services.confirm_import(previewed, member)
    worker.claim_import(previewed.pk, "gone")
    status = member_client.get(f"/imports/{previewed.pk}/status/").json()
    assert status["status"] == "failed" and "stopped reporting" in status["error"]
    page = member_client.get(previewed.get_absolute_url()).content.decode()
    assert "Resume: import the 6 remaining files" in page


def test_a_restarted_worker_requeues_the_import_it_left_running(
    previewed, member, django_capture_on_commit_callbacks
):
    services.confirm_import(previewed, member)
    worker.claim_import(previewed.pk, "w1@host")
    assert worker.requeue_left_by("w1@host") == [previewed.pk]
    assert BulkImport.objects.get().status == BulkImport.Status.QUEUED


def test_an_import_whose_message_was_lost_is_sent_again_then_fails_with_the_reason(
    previewed, member, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    sent = []
    monkeypatch.setattr("imports.tasks.run_import.delay", sent.append)
    settings.FACEWEB_QUEUE_MAX_SENDS = 2
    with django_capture_on_commit_callbacks(execute=True):
        services.confirm_import(previewed, member)
    for _ in range(4):
        BulkImport.objects.update(heartbeat_at=timezone.now() - timedelta(hours=1))
        services.requeue_lost_imports()
    bulk = BulkImport.objects.get()
    assert sent == [bulk.pk, bulk.pk]
    assert bulk.status == BulkImport.Status.FAILED
    assert "sent to the task queue 2 times" in bulk.error and "Resume" in bulk.error
    with django_capture_on_commit_callbacks(execute=True):
        assert services.confirm_import(bulk, member)  # Resume: sent again, counted afresh
    assert BulkImport.objects.values_list("status", "queue_sends").get() == ("queued", 1)


def test_files_that_are_not_usable_photos_are_listed_with_their_reason(
    post_zip, member, member_client
):
    files = {
        "Ada/face.jpg": jpeg_bytes(0, 0),
        "Ada/no-face.jpg": encode(shapes_image()),
        "Ada/broken.jpg": jpeg_bytes(0, 1)[:1500],  # truncated: the header still reads
    }
    bulk = BulkImport.objects.get(pk=post_zip(make_zip(files)).url.split("/")[-2])
    services.confirm_import(bulk, member)
    worker.run_import(bulk.pk, "w1")
    states = {f.path: (f.state, f.reason) for f in bulk.files.all()}
    assert states["Ada/face.jpg"] == (State.ADDED, "")
    assert states["Ada/no-face.jpg"][0] == State.ADDED and "No face" in states["Ada/no-face.jpg"][1]
    assert states["Ada/broken.jpg"][0] == State.FAILED and "damaged" in states["Ada/broken.jpg"][1]
    page = member_client.get(bulk.get_absolute_url()).content.decode()
    assert "Ada/broken.jpg" in page and "Ada/no-face.jpg" in page and "Ada/face.jpg" not in page


def test_discarding_a_preview_removes_the_zip_and_its_rows(
    member_client, previewed, private_storage, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(f"/imports/{previewed.pk}/discard/")
    assert response.status_code == 302
    assert BulkImport.objects.count() == ImportFile.objects.count() == 0
    assert not [p for p in private_storage.rglob("*") if p.is_file()]


def test_a_folder_sent_with_relative_paths_is_previewed_like_a_zip(member_client):
    files, paths = [], []
    for person in range(2):
        for index in range(2):
            files.append(SimpleUploadedFile(f"{index}.jpg", jpeg_bytes(person, index)))
            paths.append(f"my people/Person {person}/{index}.jpg")
    response = member_client.post("/imports/", {"files": files, "paths": paths})
    assert response.status_code == 302
    bulk = BulkImport.objects.get()
    assert bulk.source_name == "my people/"
    assert [(p["name"], p["photos"]) for p in bulk.people] == [("Person 0", 2), ("Person 1", 2)]


def test_a_folder_with_a_path_leading_out_is_refused(member_client, nothing_changed):
    files = [
        SimpleUploadedFile("a.jpg", jpeg_bytes(0, 0)),
        SimpleUploadedFile("b.jpg", jpeg_bytes(0, 1)),
    ]
    paths = ["people/Ada/a.jpg", "people/../../b.jpg"]
    response = member_client.post("/imports/", {"files": files, "paths": paths})
    assert response.status_code == 400 and "leads out of its folder" in response.content.decode()
    nothing_changed()


@pytest.mark.parametrize("role,status", [("viewer", 403), (None, 403), ("editor", 200)])
def test_only_editors_may_import(client, make_user, role, status):
    client.force_login(make_user(role))
    assert client.get("/imports/").status_code == status


def test_a_viewer_cannot_confirm_or_see_an_import(client, make_user, previewed):
    client.force_login(make_user("viewer"))
    assert client.post(f"/imports/{previewed.pk}/confirm/").status_code == 403
    assert client.get(previewed.get_absolute_url()).status_code == 403
    assert BulkImport.objects.get().status == BulkImport.Status.PREVIEW


def test_the_api_previews_confirms_and_reports_an_import(
    member_client, django_capture_on_commit_callbacks
):
    archive = SimpleUploadedFile("people.zip", people_zip(2, 2), content_type="application/zip")
    created = member_client.post("/api/v1/imports/", {"archive": archive})
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"] == "preview" and body["progress"]["waiting"] == 4
    with django_capture_on_commit_callbacks():
        confirmed = member_client.post(f"/api/v1/imports/{body['id']}/confirm/")
    assert confirmed.status_code == 202 and confirmed.json()["status"] == "queued"
    worker.run_import(body["id"], "w1")
    done = member_client.get(f"/api/v1/imports/{body['id']}/").json()
    assert done["status"] == "succeeded" and done["progress"]["added"] == 4
    again = member_client.post(f"/api/v1/imports/{body['id']}/confirm/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_started"


def test_the_api_refuses_a_hostile_zip_with_the_error_shape(member_client, nothing_changed):
    archive = SimpleUploadedFile("evil.zip", make_zip({"../x.jpg": b"x"}))
    response = member_client.post("/api/v1/imports/", {"archive": archive})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "archive_refused"
    assert "leads out" in response.json()["error"]["message"]
    nothing_changed()


def test_a_sliver_of_an_image_is_skipped_with_its_reason_and_the_import_finishes(post_zip, member):
    from PIL import Image

    files = {
        "Ada/a.jpg": jpeg_bytes(0, 0),
        "Ada/sliver.png": encode(Image.new("RGB", (30000, 10)), "PNG"),
        "Ada/b.jpg": jpeg_bytes(0, 1),
    }
    bulk = BulkImport.objects.get(pk=post_zip(make_zip(files)).url.split("/")[-2])
    services.confirm_import(bulk, member)
    assert worker.run_import(bulk.pk, "w1") == BulkImport.Status.SUCCEEDED
    sliver = bulk.files.get(path="Ada/sliver.png")
    assert sliver.state in (State.FAILED, State.SKIPPED)
    assert "30000x10: too narrow to hold a face" in sliver.reason
    assert FaceImage.objects.count() == 2


def test_a_photo_that_breaks_face_detection_fails_alone_and_the_import_finishes(
    previewed, member, monkeypatch
):
    from identities import uploads

    real = uploads.services.analyse_enrolment_photo
    calls = []

    def breaks_once(image):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("height and width must be > 0")
        return real(image)

    monkeypatch.setattr(uploads.services, "analyse_enrolment_photo", breaks_once)
    services.confirm_import(previewed, member)
    assert worker.run_import(previewed.pk, "w1") == BulkImport.Status.SUCCEEDED
    failed = previewed.files.get(state=State.FAILED)
    assert "could not be processed" in failed.reason
    assert FaceImage.objects.count() == 5


@pytest.fixture
def broker_down(monkeypatch):
    from kombu.exceptions import OperationalError

    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis:6379. Connection refused.")

    monkeypatch.setattr("imports.tasks.run_import.delay", refuse)


@pytest.mark.django_db(transaction=True)
def test_confirming_while_the_queue_is_down_is_a_503_and_the_import_can_be_resumed_or_discarded(
    member, broker_down, monkeypatch, post_zip
):
    from rest_framework.test import APIClient

    bulk = BulkImport.objects.get(pk=post_zip(people_zip(1, 2)).url.split("/")[-2])
    api = APIClient()
    api.force_authenticate(member)
    response = api.post(f"/api/v1/imports/{bulk.pk}/confirm/")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "queue_unavailable"
    bulk.refresh_from_db()
    assert bulk.status == BulkImport.Status.FAILED and "queue" in bulk.error
    monkeypatch.undo()
    monkeypatch.setattr("imports.tasks.run_import.delay", lambda pk: None)
    assert api.post(f"/api/v1/imports/{bulk.pk}/confirm/").status_code == 202  # Resume
    assert BulkImport.objects.get().status == BulkImport.Status.QUEUED


@pytest.mark.django_db(transaction=True)
def test_an_import_stopped_by_a_queue_outage_can_be_discarded(member, broker_down, post_zip):
    bulk = BulkImport.objects.get(pk=post_zip(people_zip(1, 2)).url.split("/")[-2])
    with pytest.raises(services.QueueUnavailable):
        services.confirm_import(bulk, member)
    bulk.refresh_from_db()
    assert services.discard_import(bulk, member)
    assert not BulkImport.objects.exists()
