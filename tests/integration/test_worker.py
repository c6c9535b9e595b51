"""A real Celery worker on the Redis server of this machine trains a tiny model end to end."""

import pytest

from tests.images import group_photo, write_people

pytestmark = pytest.mark.integration


def test_a_real_worker_trains_a_model_that_then_identifies_a_photo(app, tmp_path):
    people = write_people(tmp_path / "people", people=3, per_person=5)
    imported = app.manage("import_faces", people).stdout
    assert "people=3 new_people=3 imported=15 skipped=0 not_usable=0" in imported
    app.start_worker()  # no -Q: it must serve the training queue too

    trained = app.manage(
        "train",
        "--wait",
        "--batch-size",
        "8",
        timeout=180,
        check=False,
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr + app.worker_log()
    assert "epoch 1/1" in trained.stdout  # the face network's class-means head: one pass
    assert "succeeded: model v1 (active)" in trained.stdout

    photo = tmp_path / "who.png"
    group_photo([2, 0]).save(photo)
    (result,) = app.identify(photo)
    assert result["model_version"] == 1
    assert len(result["faces"]) == 2
    for face in result["faces"]:
        assert len(face["box"]) == 4
        assert face["identity"] in {"Person 0", "Person 1", "Person 2", None}
        assert len(face["top_k"]) == 3


def test_importing_the_same_folder_twice_imports_nothing_twice(app, tmp_path):
    people = write_people(tmp_path / "people", people=2, per_person=3)
    (people / "Person 0" / "notes.txt").write_text("not a photo")
    first = app.manage("import_faces", people).stdout
    second = app.manage("import_faces", people).stdout
    assert "imported=6 skipped=1 not_usable=0" in first
    assert "skipped Person 0/notes.txt: This file is not an image" in first
    assert "new_people=0 imported=0 skipped=7 not_usable=0" in second


def test_train_wait_exits_non_zero_when_the_job_fails(app, tmp_path):
    people = write_people(tmp_path / "people", people=2, per_person=3)
    app.manage("import_faces", people)
    app.start_worker()
    # A file name in the models folder is accepted when the job starts; the worker finds
    # it missing, and the job fails with the reason.
    result = app.manage(
        "train", "--wait", "--epochs", "1", "--pretrained", "no-such-weights.pt",
        timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "failed" in result.stderr and "no-such-weights.pt does not exist" in result.stderr
