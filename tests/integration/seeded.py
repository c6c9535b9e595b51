"""A faceweb with a little of everything in it, for probes from outside the process: the
schemathesis run (tests/integration/test_api_schema.py) and bench/hostile_inputs.py.

    python manage.py shell --no-imports -c "from tests.integration.seeded import main; main()"

prints one line of JSON: {"tokens": {role: API token}, "password": ..., ids}. Run it once,
on an empty database, with FACEWEB_DATA_DIR (or storage) pointing at a folder of the
probe's own.
"""

import json

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token

from accounts.roles import ROLES, set_role
from tests.images import encode, group_photo, jpeg_bytes

PEOPLE, PHOTOS_PER_PERSON = 3, 5
# A user with no role at all: refused everywhere, which the probes check too.
NO_ROLE = "none"
PASSWORD = "a long and unguessable probe password"


def main():
    print(json.dumps(seed()))


def seed():
    """Users and tokens, people with photos, a trained and active model, an identification
    whose faces wait for review and a previewed import; returns what the probes need to
    know. Not safe to run twice."""
    tokens = {role: make_user(role) for role in (*ROLES, NO_ROLE)}
    User = get_user_model()
    editor, viewer = User.objects.get(username="editor"), User.objects.get(username="viewer")
    people = enrol(editor)
    job = train()
    prediction = identify(viewer)
    bulk = preview_import(editor)
    return {
        "tokens": tokens,
        "password": PASSWORD,
        "people": [identity.pk for identity in people],
        "job": job.pk,
        "prediction": prediction.pk,
        "import": bulk.pk,
    }


def make_user(role):
    user = get_user_model().objects.create_user(role, password=PASSWORD)
    set_role(user, None if role == NO_ROLE else role)
    return Token.objects.create(user=user).key


def enrol(user):
    from identities.models import Identity
    from identities.uploads import add_face_image, clean_image

    people = []
    for person in range(PEOPLE):
        identity = Identity.objects.create(name=f"Person {person}", created_by=user)
        for index in range(PHOTOS_PER_PERSON):
            add_face_image(identity, clean_image(jpeg_bytes(person, index)))
        people.append(identity)
    return people


def train():
    from training import services
    from training.jobs import run_job
    from training.models import TrainingJob

    # Small and fast, as the training tests train: the face network's head, two epochs.
    params = services.default_params(epochs=2, batch_size=8, seed=0)
    job = TrainingJob.objects.create(params=params)
    if run_job(job.pk) != TrainingJob.Status.SUCCEEDED:
        job.refresh_from_db()
        raise SystemExit(f"training the probe's model failed: {job.error}")
    return job


def identify(user):
    from identities.views import identify_upload

    photo = SimpleUploadedFile("group.jpg", encode(group_photo([0, 1])), "image/jpeg")
    return identify_upload(photo, user, "strict")


def preview_import(user):
    from imports.services import prepare_zip
    from tests.imports.zips import people_zip

    archive = SimpleUploadedFile("people.zip", people_zip(2, 2), "application/zip")
    return prepare_zip(archive, user)
