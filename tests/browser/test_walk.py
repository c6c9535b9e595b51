"""The walking skeleton in headless Chromium: log in, enrol, train, identify; then a walk
through every page at a phone's and a desktop's width, with screenshots of each
($FACEWEB_SCREENSHOTS, else /tmp/faceweb-screens)."""

import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import get_resolver, reverse

from identities.models import IdentifyBatch, Identity
from tests.browser.conftest import log_in
from tests.images import encode, group_photo, jpeg_bytes, write_people
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


# --- Every page at a phone's and a desktop's width ---------------------------------------

WIDTHS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
# Named routes that are not pages: POST-only actions, JSON for polling, files.
NOT_PAGES = {
    "identities:image_delete", "identities:review_face", "identities:review_bulk",
    "identities:review_undo", "identities:media", "identities:home", "identities:batch_status",
    "identities:batch_resume", "training:job_status", "training:job_cancel",
    "training:version_activate", "training:version_delete", "imports:confirm",
    "imports:discard", "imports:status", "imports:rename", "accounts:token_create",
    "accounts:token_revoke",
}  # fmt: skip
LONG_NAME = "Donald Henry Rumsfeld-Wolfowitz"


def screenshot_folder():
    folder = Path(os.environ.get("FACEWEB_SCREENSHOTS", "/tmp/faceweb-screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def page_routes():
    """Every namespaced route name of the app's own pages."""
    names = set()
    for namespace in ("identities", "training", "imports", "accounts"):
        resolver = get_resolver().namespace_dict[namespace][1]
        names |= {f"{namespace}:{n}" for n in resolver.reverse_dict if isinstance(n, str)}
    return names - NOT_PAGES


@pytest.fixture
def seeded(make_user):
    """A little of everything, so that every page has real objects to show."""
    from identities.uploads import add_face_image, clean_image
    from identities.views import identify_upload
    from imports.services import prepare_zip
    from tests.identities.recorded import face, record
    from tests.imports.zips import people_zip

    admin = make_user("admin", "alice")
    people = []
    for person, name in enumerate(["Ada Lovelace", "Grace Hopper", LONG_NAME]):
        people.append(Identity.objects.create(name=name, created_by=admin))
        for index in range(4):
            add_face_image(people[-1], clean_image(jpeg_bytes(person, index)))
    several = add_face_image(people[0], clean_image(encode(group_photo([0, 1]))))
    job = TrainingJob.objects.create(params=services.default_params(**TINY))
    assert run_job(job.pk) == TrainingJob.Status.SUCCEEDED
    failed = TrainingJob.objects.create(
        params=services.default_params(**TINY), status="failed", error="The worker died."
    )
    photo = SimpleUploadedFile("group.jpg", encode(group_photo([0, 2])), "image/jpeg")
    prediction = identify_upload(photo, admin, "lenient")
    record(admin, face(people[1], 0.42), person=1, index=5)
    for index, vector in enumerate([[1, 0.1, 0], [0.9, 0.2, 0], [0, 1, 0.1]]):
        record(admin, face(None, 0.2, embedding=vector), person=3 + index, index=index)
    zipped = SimpleUploadedFile("people.zip", people_zip(2, 2), "application/zip")
    batch = IdentifyBatch.objects.create(created_by=admin, status="succeeded")
    batch.photos.create(position=0, name="group.jpg", state="done", prediction=prediction)
    batch.photos.create(position=1, name="notes.txt", state="refused", reason="Not an image.")
    return {
        "person": people[2], "image": several, "job": job, "failed": failed, "batch": batch,
        "prediction": prediction, "import": prepare_zip(zipped, admin), "people": people,
    }  # fmt: skip


def walk_paths(seeded):
    """(screenshot name, route name, path) for every page, with the objects seeded."""
    slug, image = seeded["person"].slug, seeded["image"].pk
    picked = "?" + "&".join(f"images={i.pk}" for i in seeded["person"].images.all()[:2])
    two = "?" + "&".join(f"identities={p.pk}" for p in seeded["people"][:2])

    def at(name, route, *args, query=""):
        return (name, route, reverse(route, args=args) + query)

    return [
        at("people", "identities:list"),
        at("person", "identities:detail", slug),
        at("person-edit", "identities:edit", slug),
        at("person-delete", "identities:delete", slug),
        at("split", "identities:split", slug, query=picked),
        at("move", "identities:move", slug, query=picked),
        at("merge", "identities:merge", query=two),
        at("delete-people", "identities:delete_people", query=two),
        at("quality", "identities:quality"),
        at("choose-face", "identities:choose_face", image),
        at("identify", "identities:identify"),
        at("result", "identities:prediction", seeded["prediction"].pk),
        at("batch", "identities:batch", seeded["batch"].pk),
        ("export", "identities:export", None),  # a zip download, not a page
        at("history", "identities:history"),
        at("review", "identities:review"),
        at("recent-names", "identities:recent_names"),
        at("unknown-faces", "identities:unknown_faces"),
        at("training", "training:home"),
        at("job", "training:job", seeded["job"].pk),
        at("job-failed", "training:job", seeded["failed"].pk),
        at("import-new", "imports:new"),
        at("import-preview", "imports:detail", seeded["import"].pk),
        at("profile", "accounts:profile"),
        ("admin", None, "/admin/"),
        ("admin-versions", None, "/admin/training/modelversion/"),
        ("not-found", None, "/people/nobody-at-all/"),
    ]


def test_every_page_fits_a_phone_and_a_desktop(browser, live_server, seeded):
    pages = walk_paths(seeded)
    assert {route for _, route, _ in pages if route} == page_routes()  # a new page is walked
    folder, too_wide = screenshot_folder(), []
    for size, viewport in WIDTHS.items():
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        page.goto(live_server.url + "/login/")
        too_wide += look_at(page, folder, "login", size)
        log_in(page, live_server, "alice", "/login/")
        if size == "phone":
            open_the_menu(page, folder)
        for name, _, path in pages:
            if path is not None:
                page.goto(live_server.url + path)
                too_wide += look_at(page, folder, name, size)
        context.close()
    services.clear_model_cache()
    assert not too_wide, f"wider than the window: {too_wide}"


def open_the_menu(page, folder):
    """On a phone the navigation hides behind Menu, and opens legible: light on dark."""
    assert not page.is_visible("nav >> text=Review")
    page.click(".menu-button")
    assert page.is_visible("nav >> text=Review") and page.is_visible("text=Log out")
    colour = page.eval_on_selector("nav a", "a => getComputedStyle(a).color")
    assert colour == "rgb(255, 255, 255)"
    page.screenshot(path=folder / "menu-open-phone.png")
    page.click(".menu-button")


def look_at(page, folder, name, size):
    """Screenshot the page; returns [what is wrong] when it is wider than the window."""
    show_every_image(page)
    page.screenshot(path=folder / f"{name}-{size}.png", full_page=True)
    if page.evaluate("document.documentElement.scrollWidth > window.innerWidth"):
        return [f"{name} at {size} width: {page.evaluate(WIDEST)}"]
    return []


# The first few elements that stick out of the window, to say what to fix.
WIDEST = """() => Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(0, 4).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
    + ' ' + Math.round(e.getBoundingClientRect().right) + 'px')"""


def show_every_image(page):
    """Scroll through the page so that lazily loaded photos load before the screenshot."""
    page.evaluate(
        "async () => { for (let y = 0; y < document.body.scrollHeight; y += 600) {"
        " window.scrollTo(0, y); await new Promise(r => setTimeout(r, 30)); }"
        " window.scrollTo(0, 0); }"
    )
    page.wait_for_load_state("networkidle")
