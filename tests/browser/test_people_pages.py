"""People management, bulk import and data quality in headless Chromium, with a screenshot
of every page (test-artifacts/screenshots/people-*.png)."""

import pytest

from identities.models import FaceImage, Identity
from identities.uploads import add_face_image, clean_image
from imports import worker
from imports.models import BulkImport
from tests.browser.conftest import log_in
from tests.images import encode, jpeg_bytes, person_image, shapes_image
from tests.imports.zips import make_zip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def editor(page, live_server, make_user):
    make_user("editor", "alice")
    log_in(page, live_server, "alice", "/login/")
    page.wait_for_url(live_server.url + "/people/")
    return page


def enrol(name, person, count):
    identity = Identity.objects.create(name=name)
    for index in range(count):
        add_face_image(identity, clean_image(jpeg_bytes(person, index)))
    return identity


def test_an_editor_merges_splits_moves_and_deletes_people(editor, live_server, shoot):
    page = editor
    enrol("Ada Lovelace", 0, 4)
    enrol("Ada L.", 0, 2)
    enrol("Alan Turing", 1, 3)
    enrol("Grace Hopper", 2, 2)
    page.goto(live_server.url + "/people/")
    page.check("[aria-label='Select Ada Lovelace']")
    page.check("[aria-label='Select Ada L.']")
    shoot("people-01-list-selected")
    page.click("button:has-text('Merge two')")
    page.wait_for_selector("h1:has-text('Merge two people')")
    shoot("people-02-merge-confirm")
    page.click("button:has-text('Merge')")
    page.wait_for_selector(".messages li")
    assert Identity.objects.filter(name__startswith="Ada").count() == 1
    shoot("people-03-merged")

    page.check("[aria-label='Select photo 1']")
    page.check("[aria-label='Select photo 2']")
    page.click("button:has-text('Make a new person')")
    page.fill("#id_name", "Augusta Ada King")
    shoot("people-04-split-confirm")
    page.click("button:has-text('Split into a new person')")
    page.wait_for_selector("h1:has-text('Augusta Ada King')")
    assert Identity.objects.get(name="Augusta Ada King").images.count() == 2

    page.check("[aria-label='Select photo 1']")
    page.click("button:has-text('Move them to someone else')")
    page.select_option("#id_target", label="Alan Turing")
    page.click("button:has-text('Next')")
    page.wait_for_selector("text=will move from Augusta Ada King")
    shoot("people-05-move-confirm")
    page.click("button:has-text('Move 1 photo')")
    page.wait_for_selector(".messages li")

    page.click("nav >> text=People")
    page.check("[aria-label='Select Grace Hopper']")
    page.click("button:has-text('Delete…')")
    page.wait_for_selector("h1:has-text('Delete 1 person?')")
    shoot("people-06-delete-confirm")
    page.click("button:has-text('Delete 1 person')")
    page.wait_for_selector(".messages li")
    assert not Identity.objects.filter(name="Grace Hopper").exists()
    shoot("people-07-after-delete")


def test_an_editor_imports_a_zip_and_watches_it_finish(editor, live_server, tmp_path, shoot):
    page = editor
    enrol("Person 0", 0, 1)
    files = {f"team/Person {p}/{i}.jpg": jpeg_bytes(p, i) for p in range(3) for i in range(3)}
    files["team/Person 1/notes.txt"] = b"not a photo"
    files["team/Zoë Ångström/фото 1.jpg"] = jpeg_bytes(3, 0)
    files["team/Zoë Ångström/no face.jpg"] = encode(shapes_image())
    files["team/Person 0/0.jpg"] = jpeg_bytes(0, 0)  # already stored
    zip_path = tmp_path / "team.zip"
    zip_path.write_bytes(make_zip(files))
    page.goto(live_server.url + "/imports/")
    shoot("people-08-import-new")
    page.set_input_files("#id_archive", str(zip_path))
    page.click("#zip-form button")
    page.wait_for_selector("h2:has-text('What will happen')")
    shoot("people-09-import-preview")
    page.click("button:has-text('Import 10 photos')")
    page.wait_for_selector("#import-progress")
    shoot("people-10-import-queued")
    bulk = BulkImport.objects.get()
    assert worker.run_import(bulk.pk, "browser-test") == BulkImport.Status.SUCCEEDED
    page.wait_for_selector("#import-done:not([hidden])", timeout=15_000)
    shoot("people-11-import-finished")
    assert FaceImage.objects.count() == 11


def test_an_editor_refused_zip_sees_why(editor, live_server, tmp_path, shoot):
    page = editor
    zip_path = tmp_path / "evil.zip"
    zip_path.write_bytes(make_zip({"Ada/ok.jpg": jpeg_bytes(0, 0), "../../evil.jpg": b"x"}))
    page.goto(live_server.url + "/imports/")
    page.set_input_files("#id_archive", str(zip_path))
    page.click("#zip-form button")
    page.wait_for_selector(".errorlist")
    shoot("people-12-import-refused")
    assert BulkImport.objects.count() == 0


def test_an_editor_imports_a_folder(editor, live_server, tmp_path, shoot):
    page = editor
    folder = tmp_path / "my team"
    for person in range(2):
        (folder / f"Person {person}").mkdir(parents=True)
        for index in range(2):
            (folder / f"Person {person}" / f"{index}.jpg").write_bytes(jpeg_bytes(person, index))
    page.goto(live_server.url + "/imports/")
    page.set_input_files("#id_folder", str(folder))
    page.click("#folder-form button")
    page.wait_for_selector("h2:has-text('What will happen')")
    shoot("people-13-folder-preview")
    assert [p["name"] for p in BulkImport.objects.get().people] == ["Person 0", "Person 1"]


def test_the_data_quality_page(editor, live_server, shoot):
    page = editor
    enrol("Ada Lovelace", 0, 12)
    alan = enrol("Alan Turing", 1, 3)
    add_face_image(alan, clean_image(encode(shapes_image())))
    add_face_image(alan, clean_image(encode(person_image(0, 0).resize((100, 100)))))
    page.goto(live_server.url + "/quality/")
    page.wait_for_selector("h1:has-text('Data quality')")
    shoot("people-14-quality")
    assert page.locator("text=needs 6 more").count() == 1
