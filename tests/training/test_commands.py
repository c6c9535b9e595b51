import json

import pytest
from django.core.management import CommandError, call_command

from tests.images import person_image
from training.jobs import run_job
from training.models import TrainingJob

from .conftest import TINY

pytestmark = pytest.mark.django_db


def test_export_dataset_prints_what_it_wrote(enrolled, tmp_path, capsys):
    enrolled(people=2, per_person=5)
    call_command("export_dataset", tmp_path / "out", "--val-fraction", "0.4", "--seed", "2")
    assert "people=2 train=6 val=4" in capsys.readouterr().out
    assert (tmp_path / "out" / "manifest.json").exists()


def test_export_dataset_explains_when_there_is_not_enough_data(tmp_path):
    with pytest.raises(CommandError, match="at least two people"):
        call_command("export_dataset", tmp_path / "out")


def test_train_queues_a_job_with_the_given_parameters(enrolled, capsys):
    enrolled()
    call_command("train", "--epochs", "4", "--pretrained", "none", "--learning-rate", "0.001")
    job = TrainingJob.objects.get()
    assert (job.params["epochs"], job.params["learning_rate"]) == (4, 0.001)
    assert job.trigger == TrainingJob.Trigger.COMMAND
    assert f"queued training job #{job.pk}" in capsys.readouterr().out


def test_train_refuses_a_bad_parameter_and_queues_nothing():
    with pytest.raises(CommandError):
        call_command("train", "--epochs", "0")
    assert not TrainingJob.objects.exists()


def test_identify_prints_one_json_line_per_photo(enrolled, tmp_path, capsys):
    from training import services

    enrolled()
    run_job(TrainingJob.objects.create(params=services.default_params(**TINY)).pk)
    good, bad = tmp_path / "good.jpg", tmp_path / "bad.jpg"
    person_image(0, 42).save(good)
    bad.write_text("not a photo")
    with pytest.raises(CommandError, match="1 photo"):
        call_command("identify", good, bad)
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["photo"] == str(good) and len(first["faces"][0]["top_k"]) == 3
    assert "not an image" in second["error"]


def test_identify_says_when_no_model_is_active(tmp_path):
    photo = tmp_path / "p.jpg"
    person_image(0, 0).save(photo)
    with pytest.raises(CommandError, match="No model is active"):
        call_command("identify", photo)


def test_ensure_admin_creates_one_admin_once(settings, tmp_path, capsys, django_user_model):
    settings.DATA_DIR = tmp_path
    call_command("ensure_admin")
    call_command("ensure_admin")
    out = capsys.readouterr().out
    assert out.count("created admin account") == 1
    password = (tmp_path / "admin_password.txt").read_text().strip()
    assert django_user_model.objects.get(username="admin").check_password(password)
    assert (tmp_path / "admin_password.txt").stat().st_mode & 0o077 == 0


def test_identify_opens_a_zip_and_prints_a_line_per_photo_in_it(enrolled, tmp_path, capsys):
    import zipfile

    from tests.images import jpeg_bytes
    from training import services

    enrolled()
    run_job(TrainingJob.objects.create(params=services.default_params(**TINY)).pk)
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("a/one.jpg", jpeg_bytes(0, 43))
        zipped.writestr("a/two.jpg", jpeg_bytes(1, 43))
    call_command("identify", archive)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["photo"] for line in lines] == [f"{archive}/a/one.jpg", f"{archive}/a/two.jpg"]
    assert all(line["faces"] for line in lines)


def test_identify_reports_a_hostile_zip_and_identifies_nothing_in_it(enrolled, tmp_path, capsys):
    import zipfile

    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../escape.jpg", b"x")
    with pytest.raises(CommandError, match="1 photo"):
        call_command("identify", archive)
    (line,) = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert "leads out of its folder" in line["error"]
