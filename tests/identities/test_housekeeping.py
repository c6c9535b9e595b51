import os
import time
from datetime import timedelta

import pytest
from django.core.management import call_command

from identities.housekeeping import remove_orphan_files
from identities.models import Identity
from identities.uploads import add_face_image, clean_image, save_jpeg
from tests.conftest import stored_files
from tests.images import jpeg_bytes, person_image

pytestmark = pytest.mark.django_db


def age(root, name, hours):
    then = time.time() - hours * 3600
    os.utime(root / name, (then, then))


def test_photos_no_row_points_to_are_removed_once_old_enough(private_storage):
    kept = add_face_image(Identity.objects.create(name="Ada"), clean_image(jpeg_bytes()))
    left_by_a_crash = save_jpeg("faces", person_image(1, 0))
    chip_left_by_a_crash = save_jpeg("chips", person_image(1, 3))
    just_written = save_jpeg("crops", person_image(1, 1))
    not_a_photo_folder = save_jpeg("imports", person_image(1, 2))
    for name in (
        left_by_a_crash, chip_left_by_a_crash, not_a_photo_folder,
        kept.image.name, kept.face_crop.name, kept.face_chip.name,
    ):  # fmt: skip
        age(private_storage, name, hours=2)

    assert remove_orphan_files() == [chip_left_by_a_crash, left_by_a_crash]

    remaining = {str(p.relative_to(private_storage)) for p in stored_files(private_storage)}
    assert remaining == {
        kept.image.name, kept.thumbnail.name, kept.face_crop.name, kept.face_chip.name,
        just_written, not_a_photo_folder,
    }  # fmt: skip
    assert remove_orphan_files() == []


def test_the_command_removes_orphans_of_any_age_when_asked(private_storage, capsys):
    name = save_jpeg("predictions", person_image(0, 0))
    call_command("remove_orphan_files", "--older-than-minutes", "0")
    assert capsys.readouterr().out.splitlines() == [f"removed {name}", "removed=1"]
    assert stored_files(private_storage) == []


def test_nothing_is_removed_while_younger_than_the_grace_period(private_storage):
    save_jpeg("thumbs", person_image(0, 0))
    assert remove_orphan_files(timedelta(minutes=5)) == []
    assert len(stored_files(private_storage)) == 1


def test_the_daily_beat_task_removes_orphan_face_crops(private_storage, settings):
    from identities import tasks

    (private_storage / "prediction-faces").mkdir(parents=True)
    (private_storage / "prediction-faces" / "left-behind.jpg").write_bytes(b"face")
    age(private_storage, "prediction-faces/left-behind.jpg", hours=2)
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "identities.tasks.remove_orphan_files" in scheduled
    assert tasks.remove_orphan_files() == 1
    assert stored_files(private_storage) == []
