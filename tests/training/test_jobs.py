import io
import urllib.error
from datetime import timedelta

import pytest
import torch
from django.utils import timezone
from torchvision.models import WeightsEnum

from training import services
from training.jobs import claim_job, run_job
from training.models import ModelVersion, TrainingJob
from training.tasks import run_training_job

from .conftest import TINY, TINY_RESNET

pytestmark = pytest.mark.django_db


def queued_job(**params):
    return TrainingJob.objects.create(params=services.default_params(**(TINY | params)))


def test_a_job_trains_and_stores_an_active_model_version(enrolled):
    people = enrolled()
    job = queued_job()
    assert run_job(job.pk) == TrainingJob.Status.SUCCEEDED
    job.refresh_from_db()
    version = job.model_version
    # The default class-means head trains nothing: one "epoch" reports its accuracy.
    assert [row["epoch"] for row in job.history] == [1]
    assert {"loss", "train_accuracy", "val_accuracy", "seconds"} <= set(job.history[0])
    assert version.is_active and version.dataset_hash == job.dataset_hash
    assert [c["id"] for c in version.classes] == [p.pk for p in people]
    checkpoint = torch.load(version.artifact.path, weights_only=True, map_location="cpu")
    assert checkpoint["architecture"] == "dlib-face-resnet"
    assert checkpoint["config"]["head"] == "class_means" and checkpoint["image_size"] == 150
    assert [c["name"] for c in checkpoint["classes"]] == ["Person 0", "Person 1", "Person 2"]
    # The face network's activation ranges over the enrolment photos: it runs in int8 on
    # CPUs with VNNI.
    ranges = checkpoint["calibration"]["int8_ranges"]
    assert ranges and all(r.shape == (2,) and r[0] <= r[1] for r in ranges.values())
    from training.ml.predictor import Predictor
    from training.ml.train import cpu_has_vnni

    predictor = Predictor.from_checkpoint(version.artifact.path)
    assert (predictor.int8 is not None) == cpu_has_vnni()


def test_a_resnet18_job_trains_on_margin_crops_as_the_recipe_does(enrolled):
    enrolled()
    job = queued_job(**TINY_RESNET)
    assert run_job(job.pk) == TrainingJob.Status.SUCCEEDED
    version = TrainingJob.objects.get().model_version
    checkpoint = torch.load(version.artifact.path, weights_only=True, map_location="cpu")
    assert checkpoint["architecture"] == "resnet18" and checkpoint["image_size"] == 64
    assert checkpoint["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert "int8_ranges" not in checkpoint["calibration"]
    from tests.images import person_image

    assert len(services.identify(person_image(1, 99))["faces"]) == 1


def test_a_job_whose_face_network_weights_are_damaged_fails_and_keeps_the_active_model(
    enrolled, monkeypatch, tmp_path
):
    from training.ml.backbones import dlib_face_resnet

    enrolled()
    run_job(queued_job(epochs=1).pk)
    active = services.active_version()
    damaged = tmp_path / "damaged.dat"
    damaged.write_bytes(dlib_face_resnet.weights_path().read_bytes()[:5000])
    monkeypatch.setattr(dlib_face_resnet, "_wheel_file", lambda name: damaged)
    job = queued_job()
    assert run_job(job.pk) == TrainingJob.Status.FAILED
    job.refresh_from_db()
    assert "face network's weights cannot be read" in job.error
    assert "pip install" in job.error
    assert services.active_version() == active


def test_a_second_delivery_of_the_same_job_does_nothing(enrolled):
    enrolled()
    job = queued_job(epochs=1)
    run_training_job.apply(args=[job.pk])
    assert run_training_job.apply(args=[job.pk]).result is None
    assert ModelVersion.objects.count() == 1


def test_only_one_of_two_claims_wins():
    job = queued_job()
    assert claim_job(job.pk, "a") is True
    assert claim_job(job.pk, "b") is False
    assert TrainingJob.objects.get().worker == "a"


def test_identify_returns_the_documented_shape(enrolled):
    enrolled()
    run_job(queued_job(epochs=3).pk)
    from tests.images import person_image

    result = services.identify(person_image(1, 99), top_k=5, strictness="lenient")
    (face,) = result["faces"]
    x, y, w, h = face["box"]
    assert w > 20 and h > 20
    assert len(face["top_k"]) == 3
    assert face["identity"] in {face["top_k"][0]["identity"], None}
    assert face["confidence"] == face["top_k"][0]["probability"]
    assert abs(sum(c["probability"] for c in face["top_k"]) - 1) < 0.01


def test_every_face_in_a_group_photo_is_identified_and_a_faceless_photo_has_none(enrolled):
    from tests.images import group_photo, shapes_image

    enrolled()
    run_job(queued_job(epochs=1).pk)
    assert len(services.identify(group_photo([0, 1, 2]))["faces"]) == 3
    assert services.identify(shapes_image())["faces"] == []


def test_an_unknown_strictness_is_refused(enrolled):
    with pytest.raises(ValueError, match="strictness"):
        services.identify(None, strictness="very")


def test_a_failing_job_records_why_and_keeps_the_active_model(enrolled, settings, tmp_path):
    enrolled()
    run_job(queued_job(epochs=1).pk)
    active = services.active_version()
    # Starting weights that exist but are damaged: a state-dict file cut short.
    settings.FACEWEB_PRETRAINED_DIR = tmp_path / "pretrained"
    settings.FACEWEB_PRETRAINED_DIR.mkdir()
    buffer = io.BytesIO()
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, buffer)
    damaged = settings.FACEWEB_PRETRAINED_DIR / "resnet18.pth"
    damaged.write_bytes(buffer.getvalue()[: buffer.tell() // 2])
    job = queued_job(**TINY_RESNET | {"pretrained": "resnet18.pth"})
    assert run_job(job.pk) == TrainingJob.Status.FAILED
    job.refresh_from_db()
    assert f"{damaged} is not a readable state dict" in job.error
    assert services.active_version() == active
    assert ModelVersion.objects.count() == 1


def test_a_job_that_cannot_download_imagenet_weights_says_what_to_do(enrolled, monkeypatch):
    enrolled()

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    # The only thing not run for real: a download from the internet. Patched where the
    # ResNet backbone looks it up (weights.get_state_dict), so it is what runs.
    monkeypatch.setattr(WeightsEnum, "get_state_dict", no_network)
    job = queued_job(**TINY_RESNET | {"pretrained": "imagenet"})
    assert run_job(job.pk) == TrainingJob.Status.FAILED
    job.refresh_from_db()
    assert "no route to host" in job.error and "FACEWEB_PRETRAINED" in job.error
    assert not ModelVersion.objects.exists()


def test_a_job_without_enough_people_fails_with_the_reason(enrolled):
    first, _ = enrolled(people=2)
    job = queued_job()
    first.delete()  # after queueing, before a worker picks the job up
    assert run_job(job.pk) == TrainingJob.Status.FAILED
    assert "at least two people" in TrainingJob.objects.get().error


def test_a_cancelled_running_job_stops_and_stores_nothing(enrolled, monkeypatch):
    enrolled()
    job = queued_job(epochs=50, head="cosine")  # a head that trains, batch by batch
    from training import jobs

    # Report every batch so the cancel request is seen at once.
    monkeypatch.setattr(jobs, "PROGRESS_INTERVAL_SECONDS", 0)
    original = jobs.ProgressReporter.on_epoch

    def cancel_after_first_epoch(self, stats):
        original(self, stats)
        services.cancel_job(job)

    monkeypatch.setattr(jobs.ProgressReporter, "on_epoch", cancel_after_first_epoch)
    assert run_job(job.pk) == TrainingJob.Status.CANCELLED
    assert len(TrainingJob.objects.get().history) == 1
    assert not ModelVersion.objects.exists()


def test_a_queued_job_can_be_cancelled_before_it_starts():
    job = queued_job()
    services.cancel_job(job)
    assert run_job(job.pk) is None
    assert TrainingJob.objects.get().status == TrainingJob.Status.CANCELLED


def test_a_job_whose_worker_stopped_reporting_is_marked_failed(settings):
    job = queued_job()
    claim_job(job.pk, "celery@dead")
    old = timezone.now() - timedelta(seconds=settings.FACEWEB_JOB_STALE_SECONDS + 1)
    TrainingJob.objects.filter(pk=job.pk).update(heartbeat_at=old)
    assert services.reap_stale_jobs() == 1
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.FAILED
    assert "stopped reporting" in job.error


def test_a_restarted_worker_fails_the_jobs_it_left_running():
    from training.tasks import fail_jobs_left_running_by_this_worker

    job = queued_job()
    claim_job(job.pk, "celery@host1")

    class Consumer:
        hostname = "celery@host1"

    fail_jobs_left_running_by_this_worker(sender=Consumer())
    assert TrainingJob.objects.get(pk=job.pk).status == TrainingJob.Status.FAILED


def test_a_tampered_checkpoint_is_refused_and_nothing_is_identified(enrolled):
    enrolled()
    run_job(queued_job(epochs=1).pk)
    version = services.active_version()
    with open(version.artifact.path, "r+b") as handle:
        handle.seek(100)
        handle.write(b"tampered")
    services.clear_model_cache()  # as in a process that has not loaded it yet
    from tests.images import person_image

    with pytest.raises(services.ModelUnavailable, match="checksum"):
        services.identify(person_image(0, 0))


def test_an_unknown_training_parameter_is_refused():
    with pytest.raises(ValueError, match="Unknown training parameter"):
        services.default_params(epochz=3)


def test_scheduled_retraining_only_starts_a_job_when_the_photos_changed(enrolled):
    from identities.uploads import add_face_image, clean_image
    from tests.images import jpeg_bytes

    people = enrolled()
    first = services.retrain_if_data_changed()
    assert first.trigger == TrainingJob.Trigger.SCHEDULE
    assert services.retrain_if_data_changed() is None  # one is already queued
    TrainingJob.objects.filter(pk=first.pk).update(params=first.params | TINY)
    run_job(first.pk)
    assert services.retrain_if_data_changed() is None  # nothing changed since
    add_face_image(people[0], clean_image(jpeg_bytes(0, 40)))
    assert services.retrain_if_data_changed() is not None


def test_a_job_redelivered_to_the_worker_whose_process_died_is_failed_with_a_reason():
    job = queued_job()
    claim_job(job.pk, "celery@host1")
    assert run_job(job.pk, worker="celery@host1") == TrainingJob.Status.FAILED
    job.refresh_from_db()
    assert "process running this job died" in job.error


def test_a_job_running_elsewhere_is_left_alone_by_another_worker():
    job = queued_job()
    claim_job(job.pk, "celery@host1")
    assert run_job(job.pk, worker="celery@host2") is None
    assert TrainingJob.objects.get().status == TrainingJob.Status.RUNNING


def test_activating_a_tampered_version_is_refused_and_the_active_one_keeps_serving(enrolled):
    enrolled()
    run_job(queued_job(epochs=1).pk)
    first = services.active_version()
    add_more = queued_job(epochs=1, seed=1)
    from identities.models import FaceImage

    FaceImage.objects.last().delete()  # new data: the second version would be activated
    run_job(add_more.pk)
    second = services.active_version()
    assert second != first
    with open(first.artifact.path, "r+b") as handle:
        handle.seek(200)
        handle.write(b"tampered")
    with pytest.raises(services.ModelUnavailable, match="checksum"):
        services.activate_version(first)
    assert services.active_version() == second


def test_a_face_marked_not_anyone_we_know_is_refused_by_the_next_model(trained, member):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from identities.review import REJECT, review_face
    from identities.uploads import clean_image
    from identities.views import identify_upload
    from tests.images import jpeg_bytes
    from training.dataset import current_dataset_hash

    stranger = jpeg_bytes(7, 0)  # nobody enrolled
    before = services.identify(clean_image(stranger).image)["faces"][0]["score"]
    prediction = identify_upload(SimpleUploadedFile("s.jpg", stranger, "image/jpeg"), member)
    hash_before = current_dataset_hash()

    row, _ = review_face(prediction.face_rows.get(), REJECT, member)

    assert row.embedding_model == services.base_embedding_model() and row.embedding
    assert current_dataset_hash() != hash_before  # a retrain is due
    job = services.retrain_if_data_changed()
    assert run_job(job.pk) == TrainingJob.Status.SUCCEEDED
    version = ModelVersion.objects.get(is_active=True)
    assert version.job == job and version.calibration["stranger_faces"] == 1
    services.clear_model_cache()
    after = services.identify(clean_image(stranger).image)["faces"][0]["score"]
    # Lower by little: the generated faces all look much alike to the face network (see
    # tests/ml/test_calibrate.py for the size of the effect on faces that differ).
    assert after < before
