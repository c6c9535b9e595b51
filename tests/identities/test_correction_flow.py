"""The whole loop with a real (tiny) model: identify, correct, and a retrain is due."""

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from identities.grouping import unknown_groups
from identities.models import PredictionFace
from identities.review import NAME, review_face
from tests.images import encode, group_photo
from tests.training.conftest import TINY, enrolled, trained  # noqa: F401  (a fixture)
from training import services
from training.dataset import current_dataset_hash, plan_dataset


def identify(client, image):
    photo = SimpleUploadedFile("group.jpg", encode(image), content_type="image/jpeg")
    response = client.post(reverse("identities:identify"), {"photo": photo, "strictness": "strict"})
    assert response.status_code == 302
    return response


def test_each_identified_face_is_kept_with_its_face_and_embedding(member_client, trained):
    identify(member_client, group_photo([0, 1]))
    rows = list(PredictionFace.objects.order_by("index"))
    assert len(rows) == 2
    for row in rows:
        assert row.face_crop and row.crop_box and len(bytes(row.embedding)) == 128 * 4
        assert row.embedding_version == services.active_version()
        assert row.prediction.faces[row.index]["box"] == row.box


def test_a_correction_makes_a_retrain_due_on_the_person_and_training_pages(
    client, make_user, trained
):
    trainer = make_user("trainer")
    client.force_login(trainer)
    person = trained[0]
    assert not services.retrain_status().due
    assert "a retrain is due" not in client.get(person.get_absolute_url()).content.decode()
    identify(client, group_photo([0, 1]))
    review_face(PredictionFace.objects.get(index=0), NAME, trainer, identity=person)
    assert services.retrain_status().due
    assert "a retrain is due" in client.get(person.get_absolute_url()).content.decode()
    assert "a retrain is due" in client.get(reverse("training:home")).content.decode()
    assert services.retrain_if_data_changed() is not None  # the scheduled retrain


def test_the_cheap_dataset_hash_is_the_one_training_records(trained):
    assert current_dataset_hash() == plan_dataset().dataset_hash


def test_unknown_faces_are_grouped_by_the_base_networks_embedding_computed_once(
    member_client, trained, monkeypatch
):
    identify(member_client, group_photo([0, 1]))
    PredictionFace.objects.update(identity=None)
    groups = unknown_groups()
    assert sum(len(group) for group in groups) == 2
    rows = list(PredictionFace.objects.all())
    assert all(row.embedding_model == services.base_embedding_model() for row in rows)
    assert all(row.embedding_version is None and len(bytes(row.embedding)) == 512 for row in rows)

    def no_network(regions):
        raise AssertionError("a base embedding was computed twice")

    # A retrain changes nothing: the base network's embeddings are kept as they are.
    monkeypatch.setattr(services, "align_faces", no_network)
    assert sum(len(group) for group in unknown_groups()) == 2
