"""Retention, "delete this person and all their data", and a person's data export."""

import csv
import io
import json
import zipfile
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from identities.models import FaceImage, Identity, Prediction, PredictionFace
from identities.recognitions import purge_expired
from identities.review import CONFIRM, NAME, REJECT, review_face
from identities.tasks import purge_expired_predictions
from identities.uploads import add_face_image, clean_image
from tests.conftest import stored_files
from tests.identities.recorded import face, record
from tests.images import jpeg_bytes
from training import identification, services
from training.models import ModelVersion


def age(prediction, days):
    Prediction.objects.filter(pk=prediction.pk).update(
        created_at=timezone.now() - timedelta(days=days)
    )


def version_on(*identities, active=False):
    classes = [{"id": i.pk, "name": i.name, "folder": i.slug} for i in identities]
    return ModelVersion.objects.create(
        artifact="models/x.pt", sha256="0" * 64, architecture="resnet18", classes=classes,
        dataset_hash="h", is_active=active,
    )  # fmt: skip


# --- retention ------------------------------------------------------------------------------


def test_retention_deletes_old_photos_and_unreviewed_faces_and_keeps_results(
    member, ada, settings, private_storage, django_capture_on_commit_callbacks
):
    settings.FACEWEB_PREDICTION_RETENTION_DAYS = 30
    old = record(member, face(ada, 0.9, embedding=[1.0, 2.0]), face(None, 0.2))
    reviewed = old.face_rows.get(index=1)
    review_face(reviewed, REJECT, member)
    recent = record(member, face(ada, 0.9))
    age(old, 31)
    with django_capture_on_commit_callbacks(execute=True):
        assert purge_expired() == {"photos": 1, "faces": 1}
    old.refresh_from_db()
    assert not old.photo and old.faces[0]["identity"] == "Ada Lovelace"
    pending = old.face_rows.get(index=0)
    assert not pending.face_crop and pending.embedding is None and pending.identity == ada
    assert old.face_rows.get(index=1).face_crop  # reviewed: kept with its answer
    recent.refresh_from_db()
    assert recent.photo and recent.face_rows.get().face_crop
    names = {str(p.relative_to(private_storage)) for p in stored_files(private_storage)}
    assert names == {
        recent.photo.name,
        recent.face_rows.get().face_crop.name,
        reviewed.face_crop.name,
    }


def test_the_retention_task_run_twice_deletes_nothing_more(member, ada, settings):
    settings.FACEWEB_PREDICTION_RETENTION_DAYS = 1
    age(record(member, face(ada, 0.9)), 2)
    assert purge_expired_predictions() == {"photos": 1, "faces": 1}
    assert purge_expired_predictions() == {"photos": 0, "faces": 0}


def test_retention_of_zero_days_keeps_everything(member, ada, settings):
    settings.FACEWEB_PREDICTION_RETENTION_DAYS = 0
    age(record(member, face(ada, 0.9)), 400)
    assert purge_expired() == {"photos": 0, "faces": 0}
    assert Prediction.objects.get().photo


def test_with_photos_not_kept_only_the_results_are_stored(member, ada, settings, private_storage):
    settings.FACEWEB_KEEP_PREDICTION_PHOTOS = False
    prediction = record(member, face(ada, 0.9, embedding=[1.0, 2.0]))
    row = prediction.face_rows.get()
    assert not prediction.photo and not row.face_crop and row.embedding is None
    assert prediction.faces[0]["identity"] == "Ada Lovelace"
    assert stored_files(private_storage) == []


def test_the_beat_schedule_runs_the_purge():
    from django.conf import settings

    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "identities.tasks.purge_expired_predictions" in tasks


# --- delete this person and all their data ------------------------------------------------


def test_deleting_a_person_deletes_every_identification_naming_them(
    member_client, member, ada, grace, private_storage, django_capture_on_commit_callbacks
):
    add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    named_by_model = record(member, face(ada, 0.9))
    named_by_reviewer = record(member, face(None, 0.2))
    review_face(named_by_reviewer.face_rows.get(), NAME, member, identity=ada)
    about_grace = record(member, face(grace, 0.9))
    url = reverse("identities:delete", args=[ada.slug])
    assert "2 identifications that named them" in member_client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        member_client.post(url)
    assert not Identity.objects.filter(pk=ada.pk).exists()
    assert list(Prediction.objects.all()) == [about_grace]
    assert not FaceImage.objects.exists()
    remaining = {str(p.relative_to(private_storage)) for p in stored_files(private_storage)}
    assert remaining == {about_grace.photo.name, about_grace.face_rows.get().face_crop.name}
    event = AuditEvent.objects.get(action="identity.delete")
    assert event.details == {"photos": 2, "predictions": 2}
    assert not named_by_model.face_rows.exists()


def test_deleting_a_person_takes_them_out_of_other_results_candidates(member, ada, grace):
    both = face(grace, 0.6)
    both["top_k"].append({"identity": ada.name, "identity_id": ada.pk, "probability": 0.3})
    prediction = record(member, both)
    from identities.privacy import forget_identity

    forget_identity(ada, member)
    prediction.refresh_from_db()
    assert [c["identity"] for c in prediction.faces[0]["top_k"]] == ["Grace Hopper"]
    assert [c["identity"] for c in prediction.face_rows.get().candidates] == ["Grace Hopper"]


def test_versions_trained_on_a_deleted_person_say_so_and_never_name_them(member_client, ada, grace):
    version = version_on(ada, grace, active=True)
    response = member_client.post(reverse("identities:delete", args=[ada.slug]), follow=True)
    assert "still inside those weights" in response.content.decode()
    version.refresh_from_db()
    assert version.is_stale and [n["id"] for n in version.deleted_identities] == [ada.pk]
    assert "Ada Lovelace" not in json.dumps(version.classes)
    result = {"top_k": [(0, 0.9), (1, 0.1)], "score": 0.9, "accepted": True}
    answer = identification._face_result([0, 0, 9, 9], result, version.classes)
    assert answer["identity"] is None and [c["identity"] for c in answer["top_k"]] == [
        "Grace Hopper"
    ]


def test_the_training_page_offers_to_delete_old_versions_but_not_the_active_one(
    client, make_user, ada, grace
):
    trainer = make_user("trainer")
    client.force_login(trainer)
    old, active = version_on(ada, grace), version_on(ada, grace, active=True)
    services.note_identity_deleted(ada.pk)
    page = client.get(reverse("training:home")).content.decode()
    assert "their face is still inside these weights" in page
    client.post(reverse("training:version_delete", args=[active.pk]))
    assert ModelVersion.objects.filter(pk=active.pk).exists()
    client.post(reverse("training:version_delete", args=[old.pk]))
    assert not ModelVersion.objects.filter(pk=old.pk).exists()
    assert AuditEvent.objects.filter(action="version.delete").count() == 1


def test_an_editor_cannot_delete_model_versions(member_client, ada, grace):
    version = version_on(ada, grace)
    assert (
        member_client.post(reverse("training:version_delete", args=[version.pk])).status_code == 403
    )
    assert ModelVersion.objects.filter(pk=version.pk).exists()


# --- export -----------------------------------------------------------------------------------


def exported(client, identity):
    response = client.get(reverse("identities:export", args=[identity.slug]))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_the_export_holds_photos_crops_and_where_they_were_recognised(member_client, member, ada):
    image = add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    prediction = record(member, face(ada, 0.8))
    review_face(prediction.face_rows.get(), CONFIRM, member)
    archive = exported(member_client, ada)
    names = set(archive.namelist())
    assert {f"photos/{image.pk}.jpg", f"crops/{image.pk}.jpg", "person.json"} <= names
    assert f"recognised/{prediction.pk}-1.jpg" in names
    person = json.loads(archive.read("person.json"))
    assert person["name"] == "Ada Lovelace" and len(person["photos"]) == 2
    assert {p["source"] for p in person["photos"]} == {"upload", "review"}
    rows = list(csv.DictReader(io.StringIO(archive.read("recognitions.csv").decode())))
    assert [(r["identification"], r["review"], r["reviewed_by"]) for r in rows] == [
        (str(prediction.pk), "confirmed", "alice")
    ]
    assert AuditEvent.objects.filter(action="identity.export", target_id=str(ada.pk)).exists()


def test_a_viewer_cannot_export_someone(client, make_user, ada):
    client.force_login(make_user("viewer"))
    assert client.get(reverse("identities:export", args=[ada.slug])).status_code == 403
    assert not AuditEvent.objects.filter(action="identity.export").exists()


def test_exporting_someone_who_does_not_exist_is_not_found(member_client, db):
    assert member_client.get(reverse("identities:export", args=["nobody"])).status_code == 404


def test_faces_left_pending_stay_after_a_person_is_deleted_when_they_name_someone_else(
    member, ada, grace
):
    prediction = record(member, face(grace, 0.9))
    from identities.privacy import forget_identity

    forget_identity(ada, member)
    assert PredictionFace.objects.get().prediction == prediction


def test_identifications_made_before_faces_were_kept_get_their_rows(member, ada):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("identities.migrations.0003_prediction_faces_from_history")
    prediction = record(member, face(ada, 0.9), face(None, 0.2))
    PredictionFace.objects.all().delete()
    migration.faces_to_rows(apps, None)
    migration.faces_to_rows(apps, None)  # a second run adds nothing
    rows = list(prediction.face_rows.order_by("index"))
    assert [(r.index, r.identity, r.confidence) for r in rows] == [(0, ada, 0.9), (1, None, 0.2)]
    assert all(r.is_pending and not r.face_crop for r in rows)


def test_deleting_a_person_in_the_admin_forgets_them_too(client, make_user, member, ada):
    record(member, face(ada, 0.9))
    client.force_login(make_user("admin"))
    client.post(reverse("admin:identities_identity_delete", args=[ada.pk]), {"post": "yes"})
    assert not Identity.objects.exists() and not Prediction.objects.exists()


def test_the_export_holds_no_face_of_anyone_else(member_client, member, ada, grace):
    confirmed = record(member, face(ada, 0.9))
    review_face(confirmed.face_rows.get(), CONFIRM, member)
    unconfirmed = record(member, face(ada, 0.7), person=1)
    corrected = record(member, face(ada, 0.6), person=2)
    review_face(corrected.face_rows.get(), NAME, member, identity=grace)
    rejected = record(member, face(ada, 0.5), person=3)
    review_face(rejected.face_rows.get(), REJECT, member)
    archive = exported(member_client, ada)
    recognised = {n for n in archive.namelist() if n.startswith("recognised/")}
    assert recognised == {f"recognised/{confirmed.pk}-1.jpg"}
    rows = list(csv.DictReader(io.StringIO(archive.read("recognitions.csv").decode())))
    by_id = {r["identification"]: r for r in rows}
    assert set(by_id) == {str(confirmed.pk), str(unconfirmed.pk)}
    assert by_id[str(unconfirmed.pk)]["face_file"] == ""
    assert by_id[str(unconfirmed.pk)]["confidence"] == "0.7"


def test_the_export_csv_holds_no_live_spreadsheet_formula(member_client, member, ada):
    prediction = record(member, face(ada, 0.9))
    review_face(prediction.face_rows.get(), CONFIRM, member)
    Identity.objects.filter(pk=ada.pk).update(name='=HYPERLINK("http://x.example","y")')
    member.username = "@alice"
    member.save()
    archive = exported(member_client, ada)
    rows = list(csv.reader(io.StringIO(archive.read("recognitions.csv").decode())))
    cells = [cell for row in rows[1:] for cell in row]
    assert '\'=HYPERLINK("http://x.example","y")' in cells and "'@alice" in cells
    assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") for cell in cells)


def _left_by_a_killed_job(settings, job):
    folder = settings.FACEWEB_WORK_DIR / f"job-{job.pk}-0badf00d"
    (folder / "data" / "train" / "ada-lovelace").mkdir(parents=True)
    (folder / "data" / "train" / "ada-lovelace" / "1.jpg").write_bytes(jpeg_bytes(0, 0))
    (folder / "data" / "manifest.json").write_text('{"classes": ["Ada Lovelace"]}')
    return folder


def test_deleting_a_person_removes_the_work_folder_a_killed_job_left(member, ada, settings):
    from identities.privacy import forget_identity
    from training.models import TrainingJob

    failed = TrainingJob.objects.create(params={}, status=TrainingJob.Status.FAILED)
    running = TrainingJob.objects.create(params={}, status=TrainingJob.Status.RUNNING)
    left, live = _left_by_a_killed_job(settings, failed), _left_by_a_killed_job(settings, running)
    forget_identity(ada, member)
    assert not left.exists()
    assert live.exists()  # the running job removes its own when it ends


def test_housekeeping_removes_the_work_folder_of_a_job_that_is_not_running(db, settings):
    from identities.tasks import remove_orphan_files
    from training.models import TrainingJob

    job = TrainingJob.objects.create(params={}, status=TrainingJob.Status.FAILED)
    folder = _left_by_a_killed_job(settings, job)
    remove_orphan_files()
    assert not folder.exists()
