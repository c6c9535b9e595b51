import hashlib

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from accounts.models import AuditEvent
from tests.training.conftest import TINY, enrolled  # noqa: F401  (a fixture)
from training.jobs import run_job
from training.models import ModelVersion, TrainingJob


def jobs_url():
    return reverse("api:job-list")


def start(api, **params):
    return api("trainer").post(jobs_url(), params, format="json")


def test_a_trainer_starts_a_job_with_parameters(api, enrolled):
    enrolled(people=2, per_person=2)
    response = start(
        api,
        architecture="resnet18",
        epochs=3,
        learning_rate=0.01,
        image_size=64,
        seed=7,
        val_fraction=0.5,
    )
    assert response.status_code == 201
    job = TrainingJob.objects.get()
    assert response.json()["id"] == job.pk
    assert (job.status, job.trigger, job.created_by.username) == ("queued", "api", "trainer-user")
    assert job.params | {"epochs": 3, "learning_rate": 0.01, "seed": 7} == job.params
    assert (job.params["image_size"], job.params["val_fraction"]) == (64, 0.5)
    assert AuditEvent.objects.get().action == "training.start"


def test_an_unknown_parameter_is_refused(api, enrolled):
    enrolled(people=2, per_person=2)
    response = start(api, epochs=3, epoch=4)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Unknown training parameter(s): epoch;")
    assert not TrainingJob.objects.exists()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"epochs": 0}, "epochs must be between 1 and 1000, got 0"),
        ({"fine_tune_from": "layer9"}, '"layer9" is not a valid choice'),
        ({"architecture": "resnet18", "fine_tune_from": "stage5"}, "fine_tune_from must be one"),
        ({"image_size": 112}, "takes 150 px faces only"),
        ({"val_fraction": 1.5}, "val_fraction must be at least 0.0 and below 1.0, got 1.5"),
        ({"epochs": "many"}, "epochs: A valid integer is required."),
    ],
)
def test_a_bad_parameter_is_refused_with_the_reason(api, enrolled, params, message):
    enrolled(people=2, per_person=2)
    response = start(api, **params)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert not TrainingJob.objects.exists()


def test_training_without_enough_photos_is_a_conflict(api):
    response = start(api)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "not_enough_data"
    assert error["message"].startswith("Training needs at least two people")


def test_a_queued_job_is_cancelled_at_once(api):
    job = TrainingJob.objects.create()
    response = api("trainer").post(reverse("api:job-cancel", args=[job.pk]))
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert AuditEvent.objects.get().action == "training.cancel"


def test_a_finished_job_cannot_be_cancelled(api):
    job = TrainingJob.objects.create(status=TrainingJob.Status.SUCCEEDED)
    response = api("trainer").post(reverse("api:job-cancel", args=[job.pk]))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "finished"


def test_a_finished_job_shows_its_history_and_model_version(api, enrolled):
    enrolled()
    # 3 epochs: with 2 (4 batches in all) the one-cycle schedule divides by zero.
    # A cosine head trains epoch by epoch (the default class-means head is one pass).
    job = TrainingJob.objects.get(
        pk=start(api, **TINY | {"epochs": 3, "head": "cosine"}).json()["id"]
    )
    run_job(job.pk)
    body = api("trainer").get(reverse("api:job-detail", args=[job.pk])).json()
    version = ModelVersion.objects.get()
    assert (body["status"], body["model_version"], body["error"]) == ("succeeded", version.pk, "")
    assert [row["epoch"] for row in body["history"]] == [1, 2, 3]
    assert body["params"]["epochs"] == 3
    versions = api("trainer").get(reverse("api:version-list")).json()["results"]
    assert [(v["id"], v["is_active"], v["job"]) for v in versions] == [(version.pk, True, job.pk)]
    assert [c["name"] for c in versions[0]["classes"]] == ["Person 0", "Person 1", "Person 2"]
    assert "val_accuracy" in versions[0]["metrics"]


def test_a_trainer_activates_a_model_version(api):
    old = ModelVersion.objects.create(
        artifact="a.pt", sha256="0" * 64, architecture="resnet18", classes=[], dataset_hash="h",
        is_active=True,
    )  # fmt: skip
    name = default_storage.save("models/b.pt", ContentFile(b"model bytes"))
    new = ModelVersion.objects.create(
        artifact=name, sha256=hashlib.sha256(b"model bytes").hexdigest(),
        architecture="resnet18", classes=[], dataset_hash="h",
    )  # fmt: skip
    response = api("trainer").post(reverse("api:version-activate", args=[new.pk]))
    assert response.status_code == 200 and response.json()["is_active"] is True
    old.refresh_from_db()
    assert not old.is_active
    event = AuditEvent.objects.get()
    assert (event.action, event.target_id) == ("version.activate", str(new.pk))


def test_a_version_whose_file_does_not_match_is_not_activated(api):
    version = ModelVersion.objects.create(
        artifact="models/missing.pt", sha256="1" * 64, architecture="resnet18", classes=[],
        dataset_hash="h",
    )  # fmt: skip
    response = api("trainer").post(reverse("api:version-activate", args=[version.pk]))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "model_unavailable"
    version.refresh_from_db()
    assert not version.is_active


def test_pressing_train_twice_on_the_same_photos_starts_one_job(api, enrolled):
    enrolled(people=2, per_person=2)
    first, second = start(api, epochs=3), start(api, epochs=3)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"] == TrainingJob.objects.get().pk
    assert AuditEvent.objects.filter(action="training.start").count() == 1


def test_a_running_job_on_the_same_photos_is_not_started_again(api, enrolled):
    enrolled(people=2, per_person=2)
    job = TrainingJob.objects.get(pk=start(api, epochs=3).json()["id"])
    TrainingJob.objects.filter(pk=job.pk).update(
        status="running", params=job.params | {"fine_tune_from_resolved": "layer4"}
    )
    assert start(api, epochs=3).json()["id"] == job.pk
    assert TrainingJob.objects.count() == 1


def test_other_settings_or_other_photos_or_a_finished_job_start_a_new_one(
    api,
    enrolled,
):
    people = enrolled(people=2, per_person=2)
    first = start(api, epochs=3).json()["id"]
    assert start(api, epochs=4).status_code == 201  # other settings
    from identities.uploads import add_face_image, clean_image
    from tests.images import jpeg_bytes

    add_face_image(people[0], clean_image(jpeg_bytes(0, 7)))
    assert start(api, epochs=3).status_code == 201  # other photos
    TrainingJob.objects.update(status="failed")
    assert start(api, epochs=3).status_code == 201  # nothing in progress any more
    assert TrainingJob.objects.count() == 4
    assert TrainingJob.objects.filter(pk=first).exists()


@pytest.fixture
def broker_down(monkeypatch):
    """The broker refuses every message, as when Redis is stopped."""
    from kombu.exceptions import OperationalError

    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis:6379. Connection refused.")

    monkeypatch.setattr("training.tasks.run_training_job.delay", refuse)
    monkeypatch.setattr("imports.tasks.run_import.delay", refuse)


@pytest.mark.django_db(transaction=True)
def test_starting_a_job_while_the_queue_is_down_is_a_503_and_the_job_says_why(
    api,
    enrolled,
    broker_down,
):
    enrolled()
    response = api("trainer").post(jobs_url(), {"epochs": 1}, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "queue_unavailable"
    job = TrainingJob.objects.get()
    assert job.status == TrainingJob.Status.FAILED and "task queue" in job.error
    assert "redis:6379" not in response.content.decode()


def test_a_queued_job_whose_message_was_lost_is_sent_again(api, settings, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from training import services

    sent = []
    monkeypatch.setattr("training.tasks.run_training_job.delay", lambda pk: sent.append(pk) or
                        type("R", (), {"id": "t"})())  # fmt: skip
    settings.FACEWEB_QUEUE_LOST_SECONDS = 600
    lost = TrainingJob.objects.create(params=TINY, heartbeat_at=timezone.now() - timedelta(hours=1))
    fresh = TrainingJob.objects.create(params=TINY, heartbeat_at=timezone.now())
    assert services.requeue_lost_jobs() == [lost.pk]
    assert sent == [lost.pk] and fresh.pk not in sent
    assert services.requeue_lost_jobs() == []  # sent a moment ago


def test_a_job_the_queue_never_delivers_fails_after_a_bounded_number_of_sends(
    settings, monkeypatch
):
    from datetime import timedelta

    from django.utils import timezone

    from training import jobs, services

    sent = []
    monkeypatch.setattr("training.tasks.run_training_job.delay", lambda pk: sent.append(pk) or
                        type("R", (), {"id": "t"})())  # fmt: skip
    settings.FACEWEB_QUEUE_LOST_SECONDS = 600
    settings.FACEWEB_QUEUE_MAX_SENDS = 3
    job = TrainingJob.objects.create(params=TINY)
    jobs.enqueue(job.pk)  # the first send, as start_training does
    for _ in range(5):
        TrainingJob.objects.filter(pk=job.pk).update(
            heartbeat_at=timezone.now() - timedelta(hours=1)
        )
        services.requeue_lost_jobs()
    job.refresh_from_db()
    assert len(sent) == 3  # sent, then sent again twice, then given up
    assert job.status == TrainingJob.Status.FAILED and job.finished_at
    assert "sent to the task queue 3 times" in job.error
    assert "no worker took it" in job.error


def test_a_queued_job_waiting_behind_a_running_one_is_not_counted_as_lost(settings, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from training import services

    monkeypatch.setattr("training.tasks.run_training_job.delay", lambda pk:
                        type("R", (), {"id": "t"})())  # fmt: skip
    settings.FACEWEB_QUEUE_MAX_SENDS = 1
    TrainingJob.objects.create(
        params=TINY, status=TrainingJob.Status.RUNNING, heartbeat_at=timezone.now()
    )
    waiting = TrainingJob.objects.create(
        params=TINY, queue_sends=1, heartbeat_at=timezone.now() - timedelta(hours=3)
    )
    assert services.requeue_lost_jobs() == []
    assert TrainingJob.objects.get(pk=waiting.pk).status == TrainingJob.Status.QUEUED


@pytest.mark.parametrize("path", ["/etc/passwd", "../secret_key", "/nonexistent/x.pt", "a/../../b"])
def test_starting_weights_outside_the_models_folder_are_refused(api, path, settings, tmp_path):
    from training import services

    settings.FACEWEB_PRETRAINED_DIR = tmp_path / "pretrained"
    with pytest.raises(ValueError, match="models folder"):
        services.default_params(pretrained=path)
    response = api("trainer").post(jobs_url(), {"pretrained": path}, format="json")
    assert response.status_code in (400, 409)
    assert not TrainingJob.objects.exists()


def test_starting_weights_in_the_models_folder_are_taken_by_name(settings, tmp_path):
    from training import services

    settings.FACEWEB_PRETRAINED_DIR = tmp_path
    assert services.pretrained_weights_file("mine.pt") == str(tmp_path.resolve() / "mine.pt")
    assert services.pretrained_weights_file("imagenet") == "imagenet"
