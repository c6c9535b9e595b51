"""Hostile and odd zips on the import page: each hostile one is refused whole with a clear
message and changes nothing; odd but valid ones work."""

import io
import zipfile

import pytest

from imports.models import BulkImport, ImportFile
from tests.images import jpeg_bytes

from .zips import lying_sizes_zip, make_zip, people_zip, symlink_entry, zip_with

pytestmark = pytest.mark.django_db

PHOTO = jpeg_bytes(0, 0)


def refused(response):
    assert response.status_code == 400
    return response.content.decode()


def test_a_zip_with_a_path_leading_out_of_it_is_refused(post_zip, nothing_changed):
    page = refused(post_zip(make_zip({"Ada/ok.jpg": PHOTO, "Ada/../../etc/evil.jpg": PHOTO})))
    assert "leads out of its folder" in page
    nothing_changed()


def test_a_zip_with_an_absolute_path_is_refused(post_zip, nothing_changed):
    page = refused(post_zip(make_zip({"Ada/ok.jpg": PHOTO, "/etc/cron.d/evil": PHOTO})))
    assert "absolute path" in page
    nothing_changed()


def test_a_zip_with_a_windows_drive_path_is_refused(post_zip, nothing_changed):
    page = refused(post_zip(make_zip({"Ada/ok.jpg": PHOTO, "C:\\Windows\\evil.jpg": PHOTO})))
    assert "absolute path" in page
    nothing_changed()


def test_a_zip_with_a_symbolic_link_is_refused(post_zip, nothing_changed):
    data = zip_with((zipfile.ZipInfo("Ada/ok.jpg"), PHOTO), symlink_entry("Ada/x.jpg", "/etc"))
    assert "symbolic link" in refused(post_zip(data))
    nothing_changed()


def test_a_zip_bomb_is_refused_from_its_headers(post_zip, nothing_changed):
    bomb = make_zip({"Ada/ok.jpg": PHOTO, "Ada/bomb.jpg": b"\0" * (20 * 1024 * 1024)})
    assert len(bomb) < 100_000
    assert "zip bomb" in refused(post_zip(bomb))
    nothing_changed()


def test_a_zip_whose_headers_lie_about_sizes_is_refused_without_unpacking_it(
    post_zip, nothing_changed
):
    page = refused(post_zip(lying_sizes_zip()))
    assert "damaged" in page
    nothing_changed()


def test_a_zip_that_unpacks_past_the_total_limit_is_refused(post_zip, settings, nothing_changed):
    settings.FACEWEB_IMPORT_MAX_TOTAL_BYTES = 10_000
    assert "would unpack to" in refused(post_zip(people_zip(2, 3)))
    nothing_changed()


def test_a_zip_of_a_hundred_thousand_tiny_files_is_refused(post_zip, nothing_changed):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for n in range(100_000):
            archive.writestr(f"p/{n}", b"")
    page = refused(post_zip(buffer.getvalue()))
    assert "100,000 files" in page and "the limit is 10,000" in page
    nothing_changed()


def test_a_file_that_is_not_a_zip_is_refused(post_zip, nothing_changed):
    assert "not a zip file" in refused(post_zip(PHOTO))
    nothing_changed()


def test_a_truncated_zip_is_refused(post_zip, nothing_changed):
    data = people_zip(1, 3)
    assert "not a zip file" in refused(post_zip(data[: len(data) // 2]))
    nothing_changed()


def test_a_zip_with_corrupted_data_is_refused(post_zip, nothing_changed):
    data = bytearray(make_zip({"Ada/one.jpg": PHOTO}, zipfile.ZIP_STORED))
    data[200:260] = b"x" * 60  # inside the photo's bytes: the checksum no longer matches
    assert "damaged" in refused(post_zip(bytes(data)))
    nothing_changed()


def test_an_empty_zip_is_refused(post_zip, nothing_changed):
    assert "The zip is empty" in refused(post_zip(make_zip({})))
    nothing_changed()


def test_a_zip_without_person_folders_is_refused(post_zip, nothing_changed):
    page = refused(post_zip(make_zip({"one.jpg": PHOTO, "two.jpg": PHOTO})))
    assert "no photos inside person folders" in page
    nothing_changed()


def test_an_oversized_upload_is_refused_before_it_is_read(post_zip, settings, nothing_changed):
    settings.FACEWEB_IMPORT_MAX_ZIP_BYTES = 1000
    assert "larger than the" in refused(post_zip(people_zip(1, 2)))
    nothing_changed()


def preview_of(response):
    assert response.status_code == 302, response.content.decode()[:2000]
    return BulkImport.objects.get()


def test_a_zip_inside_the_zip_is_skipped_not_opened(post_zip):
    inner = make_zip({"Eve/evil.jpg": PHOTO})
    bulk = preview_of(post_zip(make_zip({"Ada/ok.jpg": PHOTO, "Ada/more.zip": inner})))
    skipped = bulk.files.get(path="Ada/more.zip")
    assert skipped.state == ImportFile.State.SKIPPED
    assert "archives inside archives are not opened" in skipped.reason
    assert not bulk.files.filter(path__contains="Eve").exists()


def test_a_zip_renamed_to_jpg_inside_the_zip_is_skipped_too(post_zip):
    inner = make_zip({"Eve/evil.jpg": PHOTO})
    bulk = preview_of(post_zip(make_zip({"Ada/ok.jpg": PHOTO, "Ada/sneaky.jpg": inner})))
    assert "archives inside archives" in bulk.files.get(path="Ada/sneaky.jpg").reason


def test_an_oversized_photo_is_skipped_and_never_read(post_zip, settings):
    settings.FACEWEB_MAX_UPLOAD_BYTES = len(PHOTO)
    big = jpeg_bytes(0, 1, size=256)
    assert len(big) > len(PHOTO)
    bulk = preview_of(post_zip(make_zip({"Ada/small.jpg": PHOTO, "Ada/big.jpg": big})))
    assert "larger than the" in bulk.files.get(path="Ada/big.jpg").reason


def test_names_in_any_script_with_spaces_and_very_long_ones_work(post_zip, member_client):
    long_name = "Ł" * 150 + " " + "ø" * 100
    names = {
        "Zoë Ångström/фото 1.jpg": jpeg_bytes(0, 0),
        "李小龍/写真 二.jpg": jpeg_bytes(1, 0),
        "محمد صلاح/صورة.jpg": jpeg_bytes(2, 0),
        f"{long_name}/{'x' * 200}.jpg": jpeg_bytes(3, 0),
    }
    bulk = preview_of(post_zip(make_zip(names)))
    people = {p["name"] for p in bulk.people}
    assert {"Zoë Ångström", "李小龍", "محمد صلاح", long_name[:200]} == people
    page = member_client.get(bulk.get_absolute_url()).content.decode()
    assert "李小龍" in page and "4</b> photos will be added to <b>4</b> people" in page


def test_utf8_names_written_without_the_utf8_flag_are_read_as_utf8(post_zip):
    # An ASCII name gets no UTF-8 flag; its bytes are then swapped for UTF-8 ones of the
    # same length, as tools that ignore the flag write them.
    data = make_zip({"JosXY/1.jpg": PHOTO}).replace(b"JosXY", "José".encode())
    bulk = preview_of(post_zip(data))
    assert [p["name"] for p in bulk.people] == ["José"]


def test_one_wrapping_folder_is_set_aside_and_system_files_are_skipped(post_zip):
    files = {
        "people/Ada/1.jpg": jpeg_bytes(0, 0),
        "people/Alan/1.jpg": jpeg_bytes(1, 0),
        "people/readme.txt": b"hello",
        "__MACOSX/people/Ada/._1.jpg": b"junk",
        "people/Ada/.DS_Store": b"junk",
    }
    bulk = preview_of(post_zip(make_zip(files)))
    assert [p["name"] for p in bulk.people] == ["Ada", "Alan"]
    assert bulk.files.filter(state=ImportFile.State.PENDING).count() == 2
    assert "Not inside a person's folder" in bulk.files.get(path="people/readme.txt").reason
    assert "system file" in bulk.files.get(path="people/Ada/.DS_Store").reason


def test_one_person_in_two_cases_is_one_person_in_the_preview(post_zip):
    files = {"Case Person/1.jpg": jpeg_bytes(0, 0), "case person/2.jpg": jpeg_bytes(0, 1)}
    bulk = preview_of(post_zip(make_zip(files)))
    assert [(p["name"], p["photos"]) for p in bulk.people] == [("Case Person", 2)]


def test_a_folder_named_with_invisible_characters_names_nobody(post_zip):
    files = {
        "Ada/1.jpg": jpeg_bytes(0, 0),
        "\u200b/2.jpg": jpeg_bytes(0, 1),
        "Eve\u202eevil/3.jpg": jpeg_bytes(0, 2),
    }
    bulk = preview_of(post_zip(make_zip(files)))
    assert [p["name"] for p in bulk.people] == ["Ada"]
    assert bulk.files.filter(state=ImportFile.State.PENDING).count() == 1


def test_a_zip_whose_entries_overlap_is_refused(post_zip, nothing_changed):
    from .zips import overlapping_zip

    data = overlapping_zip(30)
    assert len(zipfile.ZipFile(io.BytesIO(data)).infolist()) == 30
    assert "overlap" in refused(post_zip(data))
    nothing_changed()


def test_a_small_zip_is_not_inflated_far_past_its_size(post_zip, settings, nothing_changed):
    # Each entry is under the size where one entry's ratio is checked; together they
    # unpack to hundreds of times the zip.
    from PIL import Image

    from tests.images import encode

    flat = encode(Image.new("RGB", (140, 140), (10, 20, 30)), "BMP")  # 58 KB, packs to 0.1
    data = make_zip({f"Ada/{n}.bmp": flat for n in range(200)})
    assert len(data) < 100_000
    assert "zip bomb" in refused(post_zip(data))
    nothing_changed()
