"""The whole product as a new user walks it, in headless Chromium, one screenshot a step:
log in, create two people, upload their photos, train and watch it, identify a photo
with two faces, correct a result, retrain, roll back to the first model, log out."""

import threading

import pytest
from django.db import connection

from identities.models import FaceImage
from tests.browser.conftest import log_in
from tests.browser.test_walk import TINY, add_person_with_photos
from tests.images import group_photo, write_people
from training import services
from training.jobs import run_job
from training.models import ModelVersion, TrainingJob

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def start_training(page):
    page.click("nav >> text=Training")
    page.fill("#id_epochs", "12")
    # A head that trains epoch by epoch, to watch (the default class-means head is one pass).
    page.select_option("#id_head", "cosine")
    page.click("button:has-text('Train')")
    page.wait_for_selector("text=Waiting for a worker")
    job = TrainingJob.objects.latest("pk")
    # A small model keeps the walk short; the worker's part runs in a thread of this
    # process (tests/integration runs it in a real worker).
    TrainingJob.objects.filter(pk=job.pk).update(params=job.params | TINY | {"epochs": 12})
    return job


def run_job_and_disconnect(job_pk):
    try:
        run_job(job_pk)
    finally:
        connection.close()  # a thread's own connection would keep the test database open


def test_a_new_user_walks_the_whole_product(page, live_server, make_user, tmp_path, shoot):
    make_user("trainer", "tess")
    log_in(page, live_server, "tess", "/people/")  # every page needs a login first
    page.wait_for_url(live_server.url + "/people/")
    shoot("journey-01-logged-in")

    folder = write_people(tmp_path / "people", people=3, per_person=6)
    for person in (0, 1):
        if person:
            page.click("nav >> text=People")
        add_person_with_photos(page, f"Person {person}", sorted(folder.glob(f"Person {person}/*")))
        assert page.locator(".thumbs img.crop").count() == 6
    shoot("journey-02-person-with-photos")

    job = start_training(page)
    worker = threading.Thread(target=run_job_and_disconnect, args=(job.pk,))
    worker.start()
    # A head on cached face embeddings may train faster than the page polls: the page shows
    # the epochs as they come, or the finished job.
    page.wait_for_selector(
        "#progress-text:has-text('Epoch'), #job-status:has-text('Succeeded')", timeout=30000
    )
    shoot("journey-03-training-in-progress")
    worker.join(timeout=120)
    page.wait_for_selector("#job-status:has-text('Succeeded')", timeout=15000)
    assert page.locator("#curves svg").count() >= 1
    shoot("journey-04-training-finished")
    first = ModelVersion.objects.get(is_active=True)

    page.click("nav >> text=Identify")
    photo = tmp_path / "two.jpg"
    group_photo([0, 2]).save(photo)  # Person 2 is nobody the model knows yet
    page.set_input_files("#id_photo", str(photo))
    page.select_option("#id_strictness", "lenient")
    page.click("button:has-text('Identify')")
    page.wait_for_selector(".answer")
    assert page.locator(".photo-frame .face-box").count() == 2
    shoot("journey-05-two-faces")

    stranger = page.locator(".card.result >> nth=1")
    stranger.locator("input[name=new_name]").fill("Person 2")
    stranger.locator("button:has-text('Save')").click()
    page.wait_for_selector(".card.result >> nth=1 >> .reviewer")
    assert page.locator(".card.result >> nth=1 >> .answer").inner_text() == "Person 2"
    assert FaceImage.objects.filter(identity__name="Person 2").count() == 1
    shoot("journey-06-corrected")

    page.click("nav >> text=People")
    page.click("text=Person 2")
    page.set_input_files("#id_photos", [str(f) for f in sorted(folder.glob("Person 2/*"))])
    page.click("button:has-text('Upload')")
    page.wait_for_selector(".messages li")
    assert page.locator(".thumbs img.crop").count() == 7  # the corrected face and six more

    page.click("nav >> text=Training")
    assert page.locator(".retrain-due").count() == 1  # a new person since v1
    run_job(start_training(page).pk)
    page.wait_for_selector("#job-status:has-text('Succeeded')", timeout=15000)
    second = ModelVersion.objects.get(is_active=True)
    assert second != first
    page.click("nav >> text=Training")
    shoot("journey-07-two-versions")
    page.locator(f"tr:has-text('{first}') >> button:has-text('Roll back')").click()
    page.wait_for_selector("tr.active-row")
    assert ModelVersion.objects.get(is_active=True) == first
    assert str(first) in page.locator("tr.active-row").inner_text()
    shoot("journey-08-rolled-back")

    page.click("button:has-text('Log out')")
    page.wait_for_selector("#id_username")
    page.goto(live_server.url + "/people/")
    assert page.locator("#id_username").count() == 1  # logged out: back to the login form
    shoot("journey-09-logged-out")
    services.clear_model_cache()
