import json

import pytest

from identities.models import FaceImage
from training.dataset import NotEnoughData, export_dataset, plan_dataset

pytestmark = pytest.mark.django_db


def test_it_writes_the_recipe_layout_and_a_manifest(enrolled, tmp_path):
    enrolled(people=3, per_person=5)
    manifest = export_dataset(tmp_path / "out", val_fraction=0.2, seed=1)
    for split, per_person in (("train", 4), ("val", 1)):
        folders = sorted(p.name for p in (tmp_path / "out" / split).iterdir())
        assert folders == ["person-0", "person-1", "person-2"]
        for folder in folders:
            assert len(list((tmp_path / "out" / split / folder).glob("*.jpg"))) == per_person
    written = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert written["dataset_hash"] == manifest.dataset_hash
    assert len(written["files"]) == 15


def test_the_split_is_the_same_every_time_and_changes_with_the_seed(enrolled):
    enrolled(people=2, per_person=10)

    def val_ids(seed):
        return {f["image_id"] for f in plan_dataset(0.3, seed).files if f["split"] == "val"}

    assert val_ids(0) == val_ids(0)
    assert val_ids(0) != val_ids(1)


def test_exporting_twice_leaves_no_stale_files(enrolled, tmp_path):
    enrolled(people=2, per_person=4)
    export_dataset(tmp_path / "out", seed=0)
    export_dataset(tmp_path / "out", seed=3)
    assert len(list((tmp_path / "out").glob("*/*/*.jpg"))) == 8


def test_the_dataset_hash_changes_when_a_photo_is_removed(enrolled):
    enrolled(people=2, per_person=4)
    before = plan_dataset().dataset_hash
    FaceImage.objects.first().delete()
    assert plan_dataset().dataset_hash != before


def test_people_with_too_few_photos_are_left_out_with_a_reason(enrolled):
    people = enrolled(people=3, per_person=3)
    people[2].images.exclude(pk=people[2].images.first().pk).delete()
    manifest = plan_dataset(min_images=2)
    assert [c["name"] for c in manifest.classes] == ["Person 0", "Person 1"]
    assert manifest.skipped[0]["reason"] == "1 usable photo(s), 2 needed"


def test_it_refuses_to_train_fewer_than_two_people(enrolled):
    enrolled(people=1, per_person=5)
    with pytest.raises(NotEnoughData, match="at least two people"):
        plan_dataset()


def test_photos_that_are_not_ok_are_not_trained_on(enrolled):
    enrolled(people=2, per_person=4)
    FaceImage.objects.filter(pk=FaceImage.objects.first().pk).update(
        status=FaceImage.Status.NO_FACE
    )
    assert len(plan_dataset().files) == 7
