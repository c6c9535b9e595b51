"""History, Review, 'Do you know these people?' and the privacy pages in headless Chromium."""

import pytest

from identities.models import Identity, PredictionFace
from identities.uploads import add_face_image, clean_image
from tests.browser.conftest import log_in
from tests.identities.recorded import face, record
from tests.images import jpeg_bytes
from training.models import ModelVersion

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def admin_page(page, live_server, make_user):
    admin = make_user("admin", "alice")
    log_in(page, live_server, "alice")
    page.wait_for_url(live_server.url + "/people/")
    page.admin = admin
    return page


@pytest.fixture
def history(admin_page):
    """Two people with photos, a model that knows them, and identifications to review."""
    ada, grace = (
        Identity.objects.create(name="Ada Lovelace"),
        Identity.objects.create(name="Grace Hopper"),
    )
    for person, identity in enumerate([ada, grace]):
        for index in range(3):
            add_face_image(identity, clean_image(jpeg_bytes(person, index)))
    version = ModelVersion.objects.create(
        artifact="models/x.pt", sha256="0" * 64, architecture="resnet18", dataset_hash="old",
        classes=[{"id": i.pk, "name": i.name, "folder": i.slug} for i in (ada, grace)],
        is_active=True, metrics={"val_accuracy": 0.9},
    )  # fmt: skip
    admin = admin_page.admin
    sure = record(admin, face(ada, 0.97), person=0, index=4)
    unsure = record(admin, face(grace, 0.45), person=1, index=4)
    unknowns = []
    for index, vector in enumerate([[1, 0.1, 0], [0.9, 0.2, 0], [0, 1, 0.1], [0.1, 0.9, 0]]):
        prediction = record(
            admin, face(None, 0.2, embedding=vector), person=2 + index // 2, index=index
        )
        unknowns.append(prediction)
    PredictionFace.objects.filter(identity__isnull=True).update(embedding_version=version)
    return {"ada": ada, "grace": grace, "sure": sure, "unsure": unsure, "unknowns": unknowns}


def test_a_user_reviews_faces_and_browses_the_history(admin_page, live_server, history, shoot):
    page = admin_page
    page.click("nav >> text=Review")
    assert page.locator(".review-item").count() == 5
    shoot("20-review-inbox")
    first = page.locator(".review-item >> nth=0")
    assert "Grace Hopper" in first.inner_text()
    first.locator("button:has-text('Correct: Grace Hopper')").click()
    page.wait_for_selector(".messages .success")
    assert page.locator(".review-item").count() == 4
    page.locator(".review-item >> nth=0 >> .answer").click()  # a click on a card ticks it
    page.fill(".bulk-bar input[name=new_name]", "Katherine Johnson")
    page.click(".bulk-bar button:has-text('Name them')")
    page.wait_for_selector(".undo-bar")
    assert "1 face named Katherine Johnson" in page.inner_text(".undo-bar")
    page.locator(".review-item >> nth=0").locator("button:has-text('Not anyone we know')").click()
    page.wait_for_selector(".messages .success")
    shoot("21-review-after-answers")

    page.click("nav >> text=History")
    assert page.locator("table.history tbody tr").count() == 6
    shoot("22-history")
    page.check("#id_unknown_only")
    page.click("button:has-text('Filter')")
    page.wait_for_load_state()
    assert page.locator("table.history tbody tr").count() == 4  # what the model could not name
    shoot("23-history-filtered")

    page.goto(live_server.url + history["sure"].get_absolute_url())
    assert page.locator(".review-form").count() == 1
    shoot("24-result-with-review")


def test_a_reviewer_ticks_a_range_answers_once_and_undoes_it(
    admin_page, live_server, history, shoot
):
    page = admin_page
    page.goto(live_server.url + "/review/")
    cards = page.locator(".review-item")
    assert cards.count() == 5
    cards.nth(1).locator(".answer").click()
    cards.nth(4).locator(".answer").click(modifiers=["Shift"])  # the range 2..5
    assert page.locator(".review-item.selected").count() == 4
    assert page.inner_text("[data-selected-count]") == "4 faces selected"
    shoot("29-review-range-selected")
    page.click(".bulk-bar button:has-text('Not anyone we know')")
    page.wait_for_selector(".undo-bar")
    assert page.locator(".review-item").count() == 1
    assert PredictionFace.objects.filter(review="rejected").count() == 4
    page.click(".undo-bar button:has-text('Undo')")
    page.wait_for_selector(".messages .success")
    assert page.locator(".review-item").count() == 5
    assert not PredictionFace.objects.filter(review="rejected").exists()


def test_a_reviewer_checks_recent_names_group_by_group(admin_page, live_server, history, shoot):
    page = admin_page
    page.goto(live_server.url + "/review/recent/")
    groups = page.locator(".review-group")
    assert groups.count() == 2
    assert "Grace Hopper" in groups.nth(0).locator("h2").inner_text()  # 45% before 97%
    groups.nth(1).locator("button:has-text('Select all in this group')").click()
    page.select_option(".bulk-bar select[name=identity]", label="Grace Hopper")
    shoot("30-recent-names")
    page.click(".bulk-bar button:has-text('Name them')")
    page.wait_for_selector(".undo-bar")
    assert history["grace"].images.filter(source="review").count() == 1
    assert page.locator(".review-group").count() == 1


def test_a_user_names_a_group_of_unknown_faces(admin_page, live_server, history, shoot):
    page = admin_page
    page.goto(live_server.url + "/review/unknown/")
    assert page.locator("form.group").count() == 2
    shoot("25-unknown-groups")
    group = page.locator("form.group >> nth=0")
    group.locator("input[name=new_name]").fill("Mary Somerville")
    group.locator("button:has-text('Save')").click()
    page.wait_for_selector(".messages .success")
    assert page.locator("form.group").count() == 1
    page.goto(live_server.url + Identity.objects.get(name="Mary Somerville").get_absolute_url())
    assert page.locator(".provenance").count() == 2
    assert page.locator(".retrain-due").count() == 1
    shoot("26-person-from-group-retrain-due")


def test_a_user_deletes_a_person_and_all_their_data(admin_page, live_server, history, shoot):
    page = admin_page
    page.goto(live_server.url + history["ada"].get_absolute_url())
    page.click("text=Delete…")
    page.wait_for_selector("h1:has-text('all their data')")
    shoot("27-delete-all-their-data")
    page.click("button:has-text('Delete Ada Lovelace')")
    page.wait_for_selector(".messages .warning")
    assert page.locator(".forgotten").count() == 1
    shoot("28-training-after-deletion")
