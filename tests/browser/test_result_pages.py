"""The result of an identification and a batch's results in headless Chromium, at 1280 and
390 px wide: a 30-face group photo stays readable, boxes and cards share numbers in
reading order and lead to each other, a corrected face shows its new name first."""

import os
import shutil
from pathlib import Path

import pytest

from identities.models import Identity, Prediction, PredictionFace
from identities.review import NAME, review_face
from tests.browser.conftest import SCREENSHOTS, log_in
from tests.identities.recorded import face, record
from tests.images import encode, jpeg_bytes
from tests.training.conftest import TINY, enrolled, trained  # noqa: F401  (a fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
WIDTHS = {"wide": (1280, 800), "phone": (390, 844)}


@pytest.fixture
def signed_in(page, live_server, make_user):
    user = make_user("editor", "alice")
    log_in(page, live_server, "alice")
    page.user = user
    return page


def snap(page, name):
    """A full-page screenshot for people to look at (also copied to FACEWEB_SHOTS_DIR)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    if os.environ.get("FACEWEB_SHOTS_DIR"):
        Path(os.environ["FACEWEB_SHOTS_DIR"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["FACEWEB_SHOTS_DIR"]) / path.name)


def assert_fits(page):
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the window"


def lfw_group_photo(count=30, columns=6, size=120, gap=22):
    """Faces of count different people from lfw_many, in rows of columns; every other
    column sits lower, as people do in a group photo."""
    from PIL import Image

    folders = sorted(p for p in (DATASETS / "lfw_many").iterdir() if p.is_dir())[:count]
    rows = -(-count // columns)
    canvas = Image.new("RGB", (columns * (size + gap) + gap, rows * (size + gap) + 2 * gap))
    canvas.paste((90, 100, 110), (0, 0, *canvas.size))
    for n, folder in enumerate(folders):
        with Image.open(sorted(folder.glob("*.jpg"))[0]) as photo:
            face_crop = photo.convert("RGB").crop((55, 55, 195, 195)).resize((size, size))
        row, column = divmod(n, columns)
        y = gap + row * (size + gap) + (gap if column % 2 else 0)
        canvas.paste(face_crop, (gap + column * (size + gap), y))
    return canvas


def badge_boxes(page):
    return page.eval_on_selector_all(
        ".result-frame .face-box",
        """boxes => boxes.map(b => {
            const r = b.getBoundingClientRect();
            const n = b.querySelector('.face-badge').getBoundingClientRect();
            return {n: +b.dataset.face, x: r.left, y: r.top, w: r.width, h: r.height,
                    badge: [n.left, n.top, n.right, n.bottom]};
        })""",
    )


def assert_reading_order(boxes):
    boxes = sorted(boxes, key=lambda b: b["n"])
    for a, b in zip(boxes, boxes[1:], strict=False):
        overlap = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
        if overlap >= 0.5 * min(a["h"], b["h"]):
            assert b["x"] > a["x"], f"face {b['n']} is left of face {a['n']} in the same row"
        else:
            assert b["y"] > a["y"], f"face {b['n']} starts a row above face {a['n']}'s"


def assert_badges_apart(boxes):
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            ax0, ay0, ax1, ay1 = a["badge"]
            bx0, by0, bx1, by1 = b["badge"]
            assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, (
                f"the numbers of faces {a['n']} and {b['n']} overlap"
            )


@pytest.mark.skipif(not (DATASETS / "lfw_many").is_dir(), reason="no shared datasets here")
def test_a_group_photo_of_30_faces_stays_readable(signed_in, live_server, trained, tmp_path):
    page = signed_in
    photo = tmp_path / "group.jpg"
    lfw_group_photo().save(photo, quality=92)
    page.goto(live_server.url + "/identify/")
    page.set_input_files("#id_photo", str(photo))
    page.click("main button[type=submit]")
    page.wait_for_url("**/identify/*/")
    found = len(Prediction.objects.get().faces)
    assert found == 30, f"{found} of 30 faces were found"
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.reload()
        assert_fits(page)
        image = page.eval_on_selector(".result-frame img", "i => i.getBoundingClientRect().width")
        room = page.eval_on_selector("main", "m => m.clientWidth") - 48  # its padding
        natural = page.eval_on_selector(".result-frame img", "i => i.naturalWidth")
        shown_height = page.eval_on_selector(".result-frame img", "i => i.clientHeight")
        assert image >= min(natural, room) - 2 or shown_height >= height - 8 * 16 - 2
        boxes = badge_boxes(page)
        assert sorted(b["n"] for b in boxes) == list(range(1, found + 1))
        assert_reading_order(boxes)
        assert_badges_apart(boxes)
        cards = page.eval_on_selector_all(".face-cards .card[id^=face-]", "c => c.map(e => e.id)")
        assert cards == [f"face-{n}" for n in range(1, found + 1)]
        snap(page, f"17a-group-30-{label}")


def test_a_box_and_its_card_lead_to_each_other(signed_in, live_server):
    page = signed_in
    boxes = [[10, 10, 30, 30], [70, 12, 30, 30], [40, 80, 30, 30]]
    faces = [face(None, 0.3) | {"box": box} for box in boxes]
    prediction = record(page.user, *faces)
    for width, height in WIDTHS.values():
        page.set_viewport_size({"width": width, "height": height})
        page.goto(live_server.url + prediction.get_absolute_url())
        assert_fits(page)
        page.click('.face-box[data-face="3"]')
        card = page.locator("#face-3")
        page.wait_for_function("document.querySelector('#face-3').classList.contains('selected')")
        page.wait_for_timeout(600)  # the smooth scroll
        assert card.is_visible() and in_view(page, "#face-3")
        page.click("#face-2 .face-number")
        assert "selected" in page.get_attribute('.face-box[data-face="2"]', "class")
        assert "selected" not in page.get_attribute('.face-box[data-face="3"]', "class")


def in_view(page, selector):
    return page.eval_on_selector(
        selector,
        "e => { const r = e.getBoundingClientRect(); "
        "return r.bottom > 0 && r.top < window.innerHeight; }",
    )


def test_a_corrected_face_shows_its_new_name_first(signed_in, live_server):
    page = signed_in
    laura, jennifer = (Identity.objects.create(name=n) for n in ("Laura Bush", "Jennifer Aniston"))
    prediction = record(page.user, face(laura, 0.6), face(None, 0.31))
    row = PredictionFace.objects.get(prediction=prediction, index=0)
    review_face(row, NAME, page.user, identity=jennifer)
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.goto(live_server.url + prediction.get_absolute_url())
        assert_fits(page)
        card = page.locator(".card.reviewed")
        assert card.locator(".answer").inner_text() == "Jennifer Aniston"
        assert "Corrected by alice" in card.locator(".reviewer").inner_text()
        assert card.locator(".model-said").inner_text() == "Model said: Laura Bush, 60%"
        snap(page, f"17a-corrected-{label}")


def test_several_photos_are_identified_and_listed(signed_in, live_server, trained, tmp_path):
    page = signed_in
    paths = []
    for n in range(3):
        paths.append(tmp_path / f"holiday-{n}.jpg")
        paths[-1].write_bytes(jpeg_bytes(n, 30 + n))
    paths.append(tmp_path / "notes.jpg")
    paths[-1].write_bytes(b"not a photo at all")
    blank = tmp_path / "wall.jpg"
    from PIL import Image

    blank.write_bytes(encode(Image.new("RGB", (160, 120), (120, 120, 120))))
    paths.append(blank)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(live_server.url + "/identify/")
    snap(page, "17a-identify-wide")
    page.set_input_files("#id_photo", [str(p) for p in paths])
    page.click("main button[type=submit]")
    page.wait_for_url("**/identify/batches/*/")
    rows = page.locator(".batch-row")
    assert rows.count() == 4
    assert "wall.jpg" in rows.nth(0).inner_text()  # no face found: doubtful, first
    assert "notes.jpg" in page.locator("#refused").inner_text()
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.reload()
        assert_fits(page)
        snap(page, f"17a-batch-{label}")
    rows.nth(1).locator(".batch-name").click()
    page.wait_for_url("**/identify/*/")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + "/identify/")
    assert_fits(page)
    snap(page, "17a-identify-phone")


def test_a_batch_the_queue_never_delivered_says_why_and_resumes(
    signed_in, live_server, trained, settings, monkeypatch
):
    from datetime import timedelta

    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from identities import batches
    from identities.models import IdentifyBatch

    page = signed_in
    settings.FACEWEB_QUEUE_MAX_SENDS = 1
    monkeypatch.setattr("identities.tasks.identify_batch.delay", lambda pk: None)
    files = [SimpleUploadedFile(f"{n}.jpg", jpeg_bytes(n % 3, 40 + n)) for n in range(6)]
    batch, _ = batches.create_batch(files, page.user)
    batches.enqueue(batch.pk)  # sent once; its message then lost
    IdentifyBatch.objects.update(heartbeat_at=timezone.now() - timedelta(hours=1))
    batches.requeue_lost_batches()
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server.url}/identify/batches/{batch.pk}/")
        error = page.locator("#batch-error").inner_text()
        assert "never delivered these photos: they were sent to the task queue 1 time over" in error
        resume = page.get_by_role("button", name="Resume: identify the 6 remaining photos")
        assert resume.is_visible()
        assert_fits(page)
        snap(page, f"17c-batch-never-delivered-{label}")
    settings.FACEWEB_IDENTIFY_INLINE_PHOTOS = 10
    resume.click()
    page.wait_for_selector("#batch-status.succeeded")
