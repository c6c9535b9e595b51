import pytest

from identities.models import Identity
from identities.uploads import add_face_image, clean_image
from tests.images import jpeg_bytes

# Small and fast: a few generated photos, the default face network (its head alone
# trains, in a second), two epochs.
TINY = {"epochs": 2, "batch_size": 8, "seed": 0}
# The ImageNet-recipe pipeline, as small: a ResNet18 from random weights at 64 px.
TINY_RESNET = {
    "architecture": "resnet18",
    "epochs": 2,
    "image_size": 64,
    "batch_size": 8,
    "pretrained": "none",
    "seed": 0,
}


@pytest.fixture
def enrolled(db):
    """Three people with six photos each."""

    def make(people=3, per_person=6):
        identities = []
        for person in range(people):
            identity = Identity.objects.create(name=f"Person {person}")
            for index in range(per_person):
                add_face_image(identity, clean_image(jpeg_bytes(person, index)))
            identities.append(identity)
        return identities

    return make


@pytest.fixture
def trained(enrolled):
    """Three people and a tiny model trained on them, active."""
    from training import services
    from training.jobs import run_job
    from training.models import TrainingJob

    people = enrolled()
    # 3 epochs: with 2 (4 batches in all) the one-cycle schedule divides by zero.
    job = TrainingJob.objects.create(params=services.default_params(**TINY | {"epochs": 3}))
    assert run_job(job.pk) == TrainingJob.Status.SUCCEEDED
    yield people
    services.clear_model_cache()
