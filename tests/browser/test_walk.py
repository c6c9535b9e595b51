"""The walking skeleton in headless Chromium: log in, enrol, train, identify."""

import pytest

from tests.browser.conftest import log_in
from tests.images import group_photo, write_people
from training import services
from training.jobs import run_job
from training.models import TrainingJob

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
TINY = {"epochs": 3, "batch_size": 8}


@pytest.fixture
def logged_in(page, live_server, make_user):
    make_user("trainer", "alice")
    log_in(page, live_server, "alice")
    page.wait_for_url(live_server.url + "/people/")
    return page


def add_person_with_photos(page, name, files, shoot=None):
    page.fill("#id_name", name)
    page.click("text=Add person")
    page.wait_for_selector(f"h1:has-text('{name}')")
    page.set_input_files("#id_photos", [str(f) for f in files])
    if shoot:
        shoot("02-identity-before-upload")
    page.click("button:has-text('Upload')")
    page.wait_for_selector(".messages li")


def test_a_user_enrols_people_trains_and_identifies(logged_in, live_server, tmp_path, shoot):
    page = logged_in
    shoot("01-people-empty")
    folder = write_people(tmp_path / "people", people=3, per_person=5)
    for person in range(3):
        if person:
            page.click("nav >> text=People")
        files = sorted((folder / f"Person {person}").glob("*.jpg"))
        add_person_with_photos(page, f"Person {person}", files, shoot if person == 0 else None)
        assert page.locator(".thumbs li").count() == 5
        assert page.locator(".thumbs img.crop").count() == 5  # a face was found in each
    shoot("03-identity-with-photos")
    page.click("nav >> text=People")
    assert page.locator(".people li").count() == 3
    shoot("04-people")

    page.click("nav >> text=Training")
    page.fill("#id_epochs", "3")
    page.click("button:has-text('Train')")
    page.wait_for_selector("text=Waiting for a worker")
    shoot("05-job-queued")
    # The worker's part runs here, in-process; tests/integration runs it in a real worker.
    job = TrainingJob.objects.get()
    TrainingJob.objects.filter(pk=job.pk).update(params=job.params | TINY)
    assert run_job(job.pk) == TrainingJob.Status.SUCCEEDED
    page.wait_for_selector("#job-status:has-text('Succeeded')", timeout=15000)
    assert page.locator("#history tbody tr").count() == 1  # the class-means head: one pass
    shoot("06-job-finished")
    page.click("nav >> text=Training")
    assert page.locator("tr.active-row").count() == 1
    shoot("07-training")

    page.click("nav >> text=Identify")
    photo = tmp_path / "who.jpg"
    group_photo([1, 2]).save(photo)
    page.set_input_files("#id_photo", str(photo))
    page.select_option("#id_strictness", "lenient")
    page.click("button:has-text('Identify')")
    page.wait_for_selector(".answer")
    assert page.locator(".photo-frame .face-box").count() == 2
    assert page.locator(".card.result").count() == 2
    assert page.locator(".bars li").count() == 6
    page.hover(".photo-frame .face-box >> nth=0")
    assert page.locator(".card.result.highlight").count() == 1
    shoot("08-result")
    services.clear_model_cache()


def test_a_bad_upload_shows_why_in_the_page(logged_in, tmp_path, shoot):
    page = logged_in
    text = tmp_path / "holiday.jpg"
    text.write_text("this is not a photo")
    add_person_with_photos(page, "Ada", [text])
    error = page.locator(".messages .error")
    assert "holiday.jpg: This file is not an image" in error.inner_text()
    assert page.locator(".messages .success").count() == 0
    assert page.locator(".thumbs img").count() == 0
    shoot("09-upload-refused")


def test_a_user_picks_the_face_in_a_group_photo(logged_in, tmp_path, shoot):
    page = logged_in
    photo = tmp_path / "group.jpg"
    group_photo([0, 1]).save(photo)
    add_person_with_photos(page, "Ada", [photo])
    assert "Several faces" in page.locator(".problem").inner_text()
    shoot("10-several-faces")
    page.click("text=Pick the face")
    assert page.locator(".pick .face-box").count() == 2
    shoot("11-pick-the-face")
    page.click(".pick .face-box >> nth=1")
    page.wait_for_selector(".messages .success")
    assert page.locator(".problem").count() == 0
    assert page.locator(".thumbs img.crop").count() == 1


def test_a_user_creates_an_api_token_on_the_profile_page(logged_in, shoot):
    page = logged_in
    page.click(".who")
    page.wait_for_selector("h1")
    page.click("button:has-text('token')")
    page.wait_for_load_state()
    shoot("12-profile-token")
    assert "trainer" in page.content()
