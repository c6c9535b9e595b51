"""Every usable face is stored with its 5 landmarks, its aligned chip and the base face
network's embedding of that chip."""

import io
import json
import zipfile

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from identities.models import FaceImage
from identities.uploads import add_face_image, choose_face, clean_image
from tests.conftest import stored_files
from tests.images import encode, group_photo, jpeg_bytes, person_image, shapes_image
from training import services
from training.ml.faces import face_chip

pytestmark = pytest.mark.django_db


def test_an_uploaded_face_gets_landmarks_a_chip_and_a_base_embedding(ada, private_storage):
    image = add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    assert image.status == FaceImage.Status.OK
    with Image.open(private_storage / image.face_chip.name) as chip:
        assert (chip.size, chip.mode) == ((150, 150), "RGB")
    x, y, w, h = image.box
    assert len(image.landmarks) == 5
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in image.landmarks)
    assert len(image.embedding) == 128 * 4
    assert image.embedding_model == services.base_embedding_model()


def test_the_stored_embedding_is_the_base_networks_embedding_of_the_chip(ada):
    clean = clean_image(jpeg_bytes(1, 0))
    image = add_face_image(ada, clean)
    image.refresh_from_db()
    chip = face_chip(clean.image, image.landmarks)  # made again from the stored landmarks
    expected = np.frombuffer(services.base_embeddings([chip])[0], dtype="<f4")
    stored = np.frombuffer(bytes(image.embedding), dtype="<f4")
    np.testing.assert_allclose(stored, expected, rtol=0, atol=1e-5)


def test_a_photo_without_a_face_gets_no_chip_and_no_embedding(ada):
    image = add_face_image(ada, clean_image(encode(shapes_image())))
    assert image.status == FaceImage.Status.NO_FACE
    assert not image.face_chip and image.landmarks is None and image.embedding is None
    assert image.embedding_model == ""


def test_a_group_photo_gets_its_chip_when_someone_picks_the_face(ada, private_storage):
    image = add_face_image(ada, clean_image(encode(group_photo([0, 1]))))
    assert not image.face_chip and image.embedding is None
    choose_face(image, 1)
    image.refresh_from_db()
    x, y, w, h = image.candidates[1]["box"]
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in image.landmarks)
    assert (private_storage / image.face_chip.name).is_file()
    assert len(image.embedding) == 128 * 4


def test_picking_another_face_replaces_the_chip_file(ada, private_storage):
    image = add_face_image(ada, clean_image(encode(group_photo([0, 1]))))
    choose_face(image, 1)
    first_chip, first_embedding = image.face_chip.name, bytes(image.embedding)
    choose_face(image, 0)
    image.refresh_from_db()
    assert not (private_storage / first_chip).exists()
    assert (private_storage / image.face_chip.name).is_file()
    assert bytes(image.embedding) != first_embedding


def test_a_face_a_reviewer_pointed_out_is_aligned_too(db):
    photo = person_image(2, 0)
    box = list(services.analyse_enrolment_photo(photo).box)
    face = services.analyse_reviewed_face(photo, box)
    assert face.aligned.chip.size == (150, 150) and len(face.aligned.embedding) == 128 * 4


def test_deleting_a_photo_deletes_its_chip(
    ada, private_storage, django_capture_on_commit_callbacks
):
    image = add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    chip = private_storage / image.face_chip.name
    assert chip.is_file()
    with django_capture_on_commit_callbacks(execute=True):
        image.delete()
    assert not chip.exists() and stored_files(private_storage) == []


def test_the_export_holds_the_persons_chips_landmarks_and_embeddings(member_client, ada):
    image = add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    response = member_client.get(reverse("identities:export", args=[ada.slug]))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    with Image.open(io.BytesIO(archive.read(f"chips/{image.pk}.jpg"))) as chip:
        assert chip.size == (150, 150)
    photo = json.loads(archive.read("person.json"))["photos"][0]
    assert photo["face_chip"] == f"chips/{image.pk}.jpg"
    assert photo["landmarks"] == image.landmarks
    assert photo["face_embedding"]["model"] == image.embedding_model
    assert len(photo["face_embedding"]["values"]) == 128


def test_the_person_page_shows_the_aligned_chip_and_falls_back_to_the_crop(member_client, ada):
    with_chip = add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    without_chip = add_face_image(ada, clean_image(jpeg_bytes(0, 1)))
    FaceImage.objects.filter(pk=without_chip.pk).update(face_chip="")
    page = member_client.get(ada.get_absolute_url()).content.decode()
    assert with_chip.face_chip.name in page and with_chip.face_crop.name not in page
    assert without_chip.face_crop.name in page


def test_an_upload_without_dlibs_face_models_fails_naming_the_file_and_stores_nothing(
    ada, private_storage, monkeypatch, tmp_path
):
    from training.ml import faces, model_files

    monkeypatch.setattr(faces, "_shape_predictor", None)
    monkeypatch.setattr(model_files, "models_folder", lambda: tmp_path / "no-models")
    with pytest.raises(services.FaceModelMissing, match="shape_predictor_5_face_landmarks.dat"):
        add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    assert not FaceImage.objects.exists() and stored_files(private_storage) == []
