"""manage.py recompute_faces: chips and base embeddings for photos stored before them, and
base embeddings for faces marked "not anyone we know" before answers stored them."""

import io

import pytest
from django.core.management import call_command
from PIL import Image

from identities.models import FaceImage, PredictionFace
from identities.uploads import add_face_image, clean_image
from tests.identities.recorded import face, record
from tests.images import encode, jpeg_bytes, shapes_image
from training import services
from training.dataset import stranger_faces

pytestmark = pytest.mark.django_db


@pytest.fixture
def old_photos(ada, private_storage):
    """Three usable photos and one without a face, stored as before chips existed."""
    photos = [add_face_image(ada, clean_image(jpeg_bytes(0, i))) for i in range(3)]
    add_face_image(ada, clean_image(encode(shapes_image())))
    for photo in photos:
        (private_storage / photo.face_chip.name).unlink()
    FaceImage.objects.update(face_chip="", landmarks=None, embedding=None, embedding_model="")
    return photos


def recompute(*args):
    out = io.StringIO()
    call_command("recompute_faces", *args, stdout=out)
    return out.getvalue()


def state():
    """What the command may change, photo by photo."""
    return {
        photo.pk: (photo.face_chip.name, photo.landmarks, photo.embedding, photo.embedding_model)
        for photo in FaceImage.objects.all()
    }


def chip_files(root):
    return sorted(p.name for p in (root / "chips").iterdir()) if (root / "chips").exists() else []


def test_it_gives_every_usable_photo_a_chip_landmarks_and_a_base_embedding(
    old_photos, private_storage
):
    output = recompute()
    assert "3/3" in output and "photos/s" in output and "recomputed=3 skipped=0" in output
    for photo in FaceImage.objects.filter(status=FaceImage.Status.OK):
        with Image.open(private_storage / photo.face_chip.name) as chip:
            assert chip.size == (150, 150)
        assert len(photo.landmarks) == 5 and len(photo.embedding) == 128 * 4
        assert photo.embedding_model == services.base_embedding_model()
    no_face = FaceImage.objects.get(status=FaceImage.Status.NO_FACE)
    assert not no_face.face_chip and no_face.embedding is None


def test_running_it_twice_changes_nothing_the_second_time(old_photos, private_storage):
    recompute()
    before, files = state(), chip_files(private_storage)
    output = recompute()
    assert output.startswith("Nothing to do")
    assert state() == before and chip_files(private_storage) == files


def test_a_missing_original_is_reported_and_the_other_photos_are_done(old_photos, private_storage):
    lost = old_photos[1]
    (private_storage / lost.image.name).unlink()
    output = recompute()
    assert (
        f"skipped photo {lost.pk} of Ada Lovelace: its file {lost.image.name} is missing" in output
    )
    assert "recomputed=2 skipped=1" in output
    assert not FaceImage.objects.get(pk=lost.pk).face_chip
    assert FaceImage.objects.exclude(face_chip="").count() == 2


def test_an_unreadable_original_is_reported_and_skipped(old_photos, private_storage):
    broken = old_photos[0]
    (private_storage / broken.image.name).write_bytes(b"not a photo")
    output = recompute()
    assert f"skipped photo {broken.pk} of Ada Lovelace: its file" in output
    assert "unreadable" in output and "recomputed=2 skipped=1" in output


def test_a_killed_run_goes_on_where_it_stopped(old_photos, monkeypatch):
    align_faces, calls = services.align_faces, []

    def killed_on_the_second_photo(regions):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return align_faces(regions)

    monkeypatch.setattr(services, "align_faces", killed_on_the_second_photo)
    with pytest.raises(KeyboardInterrupt):
        recompute("--batch-size", "1")
    assert FaceImage.objects.exclude(face_chip="").count() == 1  # the first one was kept
    output = recompute()
    assert "2 photo(s) to do" in output and "recomputed=2" in output


def test_photos_embedded_by_another_network_are_done_again(old_photos, private_storage):
    recompute()
    outdated = old_photos[2]
    FaceImage.objects.filter(pk=outdated.pk).update(embedding_model="an-older-network")
    before = state()
    output = recompute()
    assert "1 photo(s) to do" in output and "recomputed=1" in output
    after = state()
    assert after[outdated.pk][3] == services.base_embedding_model()
    assert not (private_storage / before[outdated.pk][0]).exists()  # its old chip is gone
    assert {pk: v for pk, v in after.items() if pk != outdated.pk} == {
        pk: v for pk, v in before.items() if pk != outdated.pk
    }


def test_all_redoes_every_usable_photo_and_removes_the_old_chips(old_photos, private_storage):
    recompute()
    old_files = chip_files(private_storage)
    output = recompute("--all")
    assert "recomputed=3" in output
    new_files = chip_files(private_storage)
    assert len(new_files) == 3 and not set(new_files) & set(old_files)


@pytest.fixture
def old_rejections(member, private_storage):
    """Two faces marked "not anyone we know" before the answer stored their embedding."""
    rows = [record(member, face(None, 0.2), index=i).face_rows.get() for i in (1, 2)]
    PredictionFace.objects.update(
        review=PredictionFace.Review.REJECTED, embedding=None, embedding_model=""
    )
    return rows


def test_faces_marked_as_strangers_before_get_their_base_embedding_once(old_rejections):
    assert not stranger_faces().exists()
    output = recompute()
    assert '2 face(s) marked "not anyone we know"' in output
    assert "2/2" in output and "strangers_embedded=2 strangers_lost=0" in output
    rows = PredictionFace.objects.all()
    assert all(row.embedding_model == services.base_embedding_model() for row in rows)
    assert all(len(bytes(row.embedding)) == 512 for row in rows)
    assert stranger_faces().count() == 2  # what the next training refuses
    assert recompute().startswith("Nothing to do")


def test_a_stranger_whose_photo_is_gone_is_reported_and_the_others_embedded(
    old_rejections, private_storage
):
    gone = old_rejections[0]
    for name in (gone.face_crop.name, gone.prediction.photo.name):
        (private_storage / name).unlink()
    output = recompute()
    assert "1 of them could not be embedded" in output
    assert "strangers_embedded=1 strangers_lost=1" in output
    assert list(stranger_faces()) == [PredictionFace.objects.get(pk=old_rejections[1].pk)]
    assert PredictionFace.objects.get(pk=gone.pk).review == PredictionFace.Review.REJECTED
