"""Identifying several photos at once: on the page, in a zip, in the background."""

import io
import zipfile
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from identities import batches
from identities.models import BatchPhoto, IdentifyBatch, Prediction
from tests.conftest import stored_files
from tests.images import encode, group_photo, jpeg_bytes
from tests.training.conftest import TINY, enrolled, trained  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db


def photo(name, person=0, index=7):
    return SimpleUploadedFile(name, jpeg_bytes(person, index), content_type="image/jpeg")


def zipped(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return SimpleUploadedFile("photos.zip", buffer.getvalue(), content_type="application/zip")


def post(client, files, strictness="normal"):
    return client.post(reverse("identities:identify"), {"photo": files, "strictness": strictness})


def test_several_photos_are_identified_and_listed_with_links_to_each(
    member_client, trained, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(member_client, [photo("a.jpg", 0), photo("b.jpg", 1)], "strict")
    batch = IdentifyBatch.objects.get()
    assert response.url == batch.get_absolute_url()
    assert batch.status == IdentifyBatch.Status.SUCCEEDED
    page = member_client.get(response.url).content.decode()
    for item in batch.photos.all():
        assert item.prediction.strictness == "strict"
        assert item.prediction.get_absolute_url() in page
    assert "a.jpg" in page and "b.jpg" in page
    assert stored_files_in("identify-batches") == []  # staged photos are gone


def stored_files_in(folder):
    from django.conf import settings

    return stored_files(settings.MEDIA_ROOT / folder)


def test_a_zip_of_photos_is_identified_photo_by_photo(member_client, trained):
    archive = zipped(
        {
            "trip/one.jpg": jpeg_bytes(0, 8),
            "trip/two.jpg": jpeg_bytes(1, 8),
            "__MACOSX/trip/._one.jpg": b"junk",
            "trip/notes.txt": b"not a photo",
        }
    )
    post(member_client, [archive])
    batch = IdentifyBatch.objects.get()
    names = dict(batch.photos.values_list("name", "state"))
    assert names == {
        "photos.zip/trip/one.jpg": "done",
        "photos.zip/trip/two.jpg": "done",
        "photos.zip/trip/notes.txt": "refused",
    }
    assert Prediction.objects.count() == 2


def test_a_bad_file_is_reported_by_name_and_changes_nothing(member_client, trained):
    text = SimpleUploadedFile("notes.jpg", b"just text", content_type="image/jpeg")
    response = post(member_client, [photo("good.jpg"), text])
    page = member_client.get(response.url).content.decode()
    assert "notes.jpg" in page and "not an image" in page
    refused = BatchPhoto.objects.get(name="notes.jpg")
    assert (refused.state, refused.prediction, refused.staged.name) == ("refused", None, "")
    assert Prediction.objects.count() == 1


def test_when_every_file_is_bad_nothing_is_stored(member_client, trained, private_storage):
    before = stored_files(private_storage)
    files = [
        SimpleUploadedFile("a.jpg", b"text", content_type="image/jpeg"),
        SimpleUploadedFile("b.jpg", b"GIF89a broken", content_type="image/jpeg"),
    ]
    response = post(member_client, files)
    page = response.content.decode()
    assert response.status_code == 200
    assert "a.jpg: This file is not an image" in page and "b.jpg:" in page
    assert not IdentifyBatch.objects.exists() and not Prediction.objects.exists()
    assert stored_files(private_storage) == before


def test_a_zip_with_a_path_out_of_its_folder_is_refused_whole(member_client, trained):
    archive = zipped({"ok.jpg": jpeg_bytes(0, 8), "../evil.jpg": jpeg_bytes(1, 8)})
    response = post(member_client, [photo("good.jpg"), archive])
    assert "leads out of its folder" in response.content.decode()
    assert not IdentifyBatch.objects.exists() and not Prediction.objects.exists()
    assert stored_files_in("identify-batches") == []


def test_too_many_photos_are_refused_with_the_limit(member_client, trained, settings):
    settings.FACEWEB_IDENTIFY_MAX_PHOTOS = 2
    archive = zipped({f"{n}.jpg": jpeg_bytes(0, n) for n in range(3)})
    response = post(member_client, [archive])
    assert "At most 2 photos at a time" in response.content.decode()
    assert not IdentifyBatch.objects.exists()


def test_without_a_model_nothing_is_stored(member_client, private_storage):
    response = post(member_client, [photo("a.jpg"), photo("b.jpg", 1)])
    assert "No model is active yet" in response.content.decode()
    assert not IdentifyBatch.objects.exists()
    assert stored_files(private_storage) == []


def test_a_large_batch_goes_to_a_worker_and_runs_once(
    member_client, trained, settings, monkeypatch
):
    settings.FACEWEB_IDENTIFY_INLINE_PHOTOS = 1
    sent = []
    monkeypatch.setattr("identities.tasks.identify_batch.delay", sent.append)
    response = post(member_client, [photo(f"{n}.jpg", n % 3, 9 + n) for n in range(3)])
    batch = IdentifyBatch.objects.get()
    assert sent == [batch.pk] and batch.status == IdentifyBatch.Status.QUEUED
    page = member_client.get(response.url).content.decode()
    assert "0</b> of 3 photos done" in page
    assert batches.run_batch(batch.pk, "w1") == IdentifyBatch.Status.SUCCEEDED
    assert batches.run_batch(batch.pk, "w1") is None  # a second delivery does nothing
    assert Prediction.objects.count() == 3
    status = member_client.get(reverse("identities:batch_status", args=[batch.pk])).json()
    assert (status["done"], status["percent"], status["finished"]) == (3, 100, True)


def test_a_batch_the_broker_could_not_take_can_be_resumed(
    member_client, trained, settings, monkeypatch
):
    from kombu.exceptions import OperationalError

    settings.FACEWEB_IDENTIFY_INLINE_PHOTOS = 1

    def refuse(batch_id):
        raise OperationalError("broker down")

    monkeypatch.setattr("identities.tasks.identify_batch.delay", refuse)
    response = post(member_client, [photo("a.jpg", 0), photo("b.jpg", 1)])
    batch = IdentifyBatch.objects.get()
    assert batch.status == IdentifyBatch.Status.FAILED
    assert "task queue cannot be reached" in member_client.get(response.url).content.decode()
    monkeypatch.setattr("identities.tasks.identify_batch.delay", lambda pk: None)
    member_client.post(reverse("identities:batch_resume", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.status == IdentifyBatch.Status.QUEUED


def test_a_batch_whose_message_was_lost_is_sent_again_then_stops_with_the_reason(
    member_client, trained, settings, monkeypatch
):
    settings.FACEWEB_IDENTIFY_INLINE_PHOTOS = 1
    settings.FACEWEB_QUEUE_MAX_SENDS = 2
    sent = []
    monkeypatch.setattr("identities.tasks.identify_batch.delay", sent.append)
    response = post(member_client, [photo("a.jpg", 0), photo("b.jpg", 1)])
    batch = IdentifyBatch.objects.get()
    assert batches.requeue_lost_batches() == []  # sent a moment ago: not lost yet
    for _ in range(3):
        IdentifyBatch.objects.update(heartbeat_at=timezone.now() - timedelta(hours=1))
        batches.requeue_lost_batches()
    assert sent == [batch.pk, batch.pk]
    batch.refresh_from_db()
    assert batch.status == IdentifyBatch.Status.FAILED
    assert "sent to the task queue 2 times" in batch.error and "Resume" in batch.error
    assert "sent to the task queue 2 times" in member_client.get(response.url).content.decode()
    member_client.post(reverse("identities:batch_resume", args=[batch.pk]))
    assert IdentifyBatch.objects.values_list("status", "queue_sends").get() == ("queued", 1)
    assert batches.run_batch(batch.pk, "w1") == IdentifyBatch.Status.SUCCEEDED
    assert Prediction.objects.count() == 2


def test_a_batch_whose_request_died_before_sending_it_is_sent_by_beat(
    member, trained, settings, monkeypatch
):
    sent = []
    monkeypatch.setattr("identities.tasks.identify_batch.delay", sent.append)
    batch, _ = batches.create_batch([photo("a.jpg", 0)], member)  # start_batch never ran
    IdentifyBatch.objects.update(created_at=timezone.now() - timedelta(hours=1))
    assert batches.requeue_lost_batches() == [batch.pk] and sent == [batch.pk]
    # Another batch running (and reporting) may hold the worker: the queued one waits.
    running, _ = batches.create_batch([photo("b.jpg", 1)], member)
    assert batches.claim_batch(running.pk, "w1")
    IdentifyBatch.objects.filter(pk=batch.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    assert batches.requeue_lost_batches() == []


def test_doubtful_photos_are_listed_first(member, trained):
    files = [photo("sure.jpg", 0, 10), SimpleUploadedFile("empty.jpg", encode(blank()))]
    batch, refused = batches.create_batch(files, member)
    batches.start_batch(batch)
    rows = batches.result_rows(batch)
    assert [row["photo"].name for row in rows][0] == "empty.jpg"  # no face found: doubtful


def blank():
    from PIL import Image

    return Image.new("RGB", (120, 90), (128, 128, 128))


def test_someone_elses_batch_is_not_shown(client, make_user, member, trained):
    batch, _ = batches.create_batch([photo("a.jpg"), photo("b.jpg", 1)], member)
    client.force_login(make_user("viewer", "bob"))
    assert client.get(batch.get_absolute_url()).status_code == 403
    status_url = reverse("identities:batch_status", args=[batch.pk])
    assert client.get(status_url).status_code == 403


def test_a_group_photo_in_a_batch_counts_its_faces(member_client, trained):
    group = SimpleUploadedFile("group.jpg", encode(group_photo([0, 1])), "image/jpeg")
    response = post(member_client, [group, photo("one.jpg")])
    page = member_client.get(response.url).content.decode()
    assert "2 faces" in page
