"""Hostile and odd files through every door a single photo comes in by: the person's page,
the API upload, and identify (page and API). A bad file gets a clear message and leaves no
row and no file; an odd but valid one is stored re-encoded as a plain RGB JPEG."""

import io
import struct
import zlib

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from accounts.models import AuditEvent
from identities.models import FaceImage, Prediction
from tests.api.conftest import cast, fresh_cache  # noqa: F401  (fixtures)
from tests.conftest import stored_files
from tests.images import encode, jpeg_bytes, person_image, png_bomb, shapes_image

pytestmark = pytest.mark.django_db
SCRIPT = b"<script>alert(document.cookie)</script>"


# --- the files --------------------------------------------------------------------------


def corrupt_png():
    data = bytearray(encode(person_image(0, 0, size=64), "PNG"))
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(16)
    return bytes(data)


def png_chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png_48_bit(image):
    """An RGB PNG with 16 bits per channel (Pillow cannot write one itself)."""
    pixels = np.asarray(image).astype(">u2") * 257
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def exif_rotated_face():
    """A face stored lying on its side, with the EXIF tag that tells viewers to turn it."""
    upright = Image.new("RGB", (128, 176), (90, 140, 100))
    upright.paste(person_image(1, 0), (0, 24))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown after turning 90° clockwise
    return encode(upright.transpose(Image.Transpose.ROTATE_90), exif=exif.tobytes())


def animated_gif():
    """First frame a face, the others no face at all."""
    frames = [
        image.convert("P", palette=Image.Palette.ADAPTIVE)
        for image in (person_image(2, 0), shapes_image(1, 128))
    ]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def jpeg_with_script_in_a_comment():
    return encode(person_image(0, 0), comment=SCRIPT)


def png_with_script_in_a_text_chunk():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", SCRIPT.decode())
    return encode(person_image(0, 0), "PNG", pnginfo=info)


BAD_FILES = {
    "empty": (b"", "empty"),
    "text-named-jpg": (b"hello, I am a text file named photo.jpg\n", "not an image"),
    "html-named-jpg": (b"<!doctype html><html><body>" + SCRIPT + b"</body></html>", "not an image"),
    "svg-named-jpg": (b'<svg xmlns="http://www.w3.org/2000/svg">' + SCRIPT + b"</svg>",
                      "not an image"),
    "truncated-jpeg": (jpeg_bytes()[:400], "damaged or truncated"),
    "corrupt-png": (corrupt_png(), "damaged or truncated"),
    "decompression-bomb": (png_bomb(), "too many pixels"),
    "format-not-allowed": (encode(shapes_image(size=32), "ICO"), "not accepted"),
    "very-wide-sliver": (encode(Image.new("RGB", (30000, 10)), "PNG"),
                         "30000x10: too narrow to hold a face"),
    "very-tall-sliver": (encode(Image.new("RGB", (10, 30000)), "PNG"), "too narrow"),
    "one-pixel-line": (encode(Image.new("RGB", (65000, 1)), "PNG"), "too narrow"),
}  # fmt: skip

# name -> (bytes, stored size (width, height), a face is found in it)
ODD_FILES = {
    "exif-rotated": (exif_rotated_face(), (128, 176), True),
    "cmyk-jpeg": (encode(person_image(0, 1).convert("CMYK")), (128, 128), True),
    "grayscale-jpeg": (encode(person_image(0, 2).convert("L")), (128, 128), True),
    "16-bit-gray-png": (encode(person_image(0, 3).convert("I;16"), "PNG"), (128, 128), None),
    "16-bit-rgb-png": (png_48_bit(person_image(1, 1)), (128, 128), True),
    "png-with-alpha": (encode(person_image(1, 2).convert("RGBA"), "PNG"), (128, 128), True),
    "animated-gif": (animated_gif(), (128, 128), True),
    "webp": (encode(person_image(2, 1), "WEBP", quality=90), (128, 128), True),
    "very-small": (encode(person_image(2, 2).resize((12, 12))), (12, 12), False),
    "very-large": (encode(person_image(3, 0).resize((4000, 3000)), quality=70), (4000, 3000), None),
}  # fmt: skip

ODD_NAMES = [
    "Фото Ивана.jpg",
    "张伟的照片.jpg",
    "صورة أحمد.jpg",
    "  spaces   in  the name .jpg",
    "emoji 😀 face.jpeg",
    "x" * 300 + ".jpg",
    "../../../etc/passwd.jpg",
    "evil\u202egpj.exe",
    "<img src=x onerror=alert(1)>.jpg",
]


# --- the doors ----------------------------------------------------------------------------


@pytest.fixture
def as_role(client, cast):
    """as_role("editor") -> a test client logged in as that member of the cast."""

    def login(role):
        client.force_login(cast[role])
        return client

    return login


def a_file(data, name="photo.jpg"):
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def upload_on_page(as_role, ada, data, name="photo.jpg"):
    """The messages the person's page shows after the upload."""
    response = as_role("editor").post(ada.get_absolute_url(), {"photos": [a_file(data, name)]})
    assert response.status_code == 302
    page = as_role("editor").get(response.url).content.decode()
    return page


def upload_by_api(as_role, ada, data, name="photo.jpg"):
    url = reverse("api:identity-images", args=[ada.pk])
    return as_role("editor").post(url, {"images": [a_file(data, name)]})


def identify_on_page(as_role, data):
    return as_role("viewer").post(reverse("identities:identify"), {"photo": a_file(data)})


def identify_by_api(as_role, data):
    return as_role("viewer").post(reverse("api:identify"), {"image": a_file(data)})


def assert_nothing_changed(private_storage):
    assert not FaceImage.objects.exists()
    assert not Prediction.objects.exists()
    assert not AuditEvent.objects.exists()
    assert stored_files(private_storage) == []


# --- bad files: refused everywhere, nothing kept ------------------------------------------


@pytest.fixture(params=list(BAD_FILES), ids=list(BAD_FILES))
def bad_file(request):
    return BAD_FILES[request.param]


def test_a_bad_photo_uploaded_on_the_page_is_refused_with_its_reason(
    as_role, ada, bad_file, private_storage
):
    data, message = bad_file
    page = upload_on_page(as_role, ada, data, name="holiday.jpg")
    assert "holiday.jpg: " in page and message in page
    assert_nothing_changed(private_storage)


def test_a_bad_photo_uploaded_by_the_api_is_a_400_with_its_reason(
    as_role, ada, bad_file, private_storage
):
    data, message = bad_file
    response = upload_by_api(as_role, ada, data)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert_nothing_changed(private_storage)


def test_a_bad_photo_sent_to_identify_on_the_page_shows_its_reason(
    as_role, bad_file, private_storage
):
    data, message = bad_file
    response = identify_on_page(as_role, data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert_nothing_changed(private_storage)


def test_a_bad_photo_sent_to_identify_by_the_api_is_a_400_with_its_reason(
    as_role, bad_file, private_storage
):
    data, message = bad_file
    response = identify_by_api(as_role, data)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert_nothing_changed(private_storage)


def test_a_file_over_the_size_cap_is_refused_at_every_door(as_role, ada, settings, private_storage):
    settings.FACEWEB_MAX_UPLOAD_BYTES = 1024 * 1024
    noise = np.random.default_rng(0).integers(0, 256, (800, 800, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), quality=100)  # a valid photo, just too big
    assert len(data) > settings.FACEWEB_MAX_UPLOAD_BYTES
    assert "larger than the 1 MB limit" in upload_on_page(as_role, ada, data)
    assert (
        "larger than the 1 MB limit" in upload_by_api(as_role, ada, data).json()["error"]["message"]
    )
    assert "larger than the 1 MB limit" in identify_on_page(as_role, data).content.decode()
    assert "larger than the 1 MB limit" in identify_by_api(as_role, data).json()["error"]["message"]
    assert_nothing_changed(private_storage)


# --- odd but valid files: stored as plain RGB JPEGs ---------------------------------------


@pytest.mark.parametrize("kind", list(ODD_FILES))
def test_an_odd_but_valid_photo_is_stored_as_an_upright_rgb_jpeg(
    as_role, ada, kind, private_storage
):
    data, size, has_face = ODD_FILES[kind]
    response = upload_by_api(as_role, ada, data, name=f"{kind}.img")
    assert response.status_code == 201, response.json()
    image = FaceImage.objects.get()
    stored = Image.open(private_storage / image.image.name)
    assert (stored.format, stored.mode, stored.size) == ("JPEG", "RGB", size)
    assert (image.width, image.height) == size
    if has_face is not None:
        assert (image.status == FaceImage.Status.OK) is has_face, image.status


def test_a_16_bit_photo_keeps_its_brightness_instead_of_clipping_to_white(
    as_role, ada, private_storage
):
    response = upload_by_api(as_role, ada, ODD_FILES["16-bit-rgb-png"][0])
    assert response.status_code == 201
    stored = Image.open(private_storage / FaceImage.objects.get().image.name).convert("RGB")
    original = person_image(1, 1)
    difference = np.abs(np.asarray(stored, int) - np.asarray(original, int)).mean()
    assert difference < 8


@pytest.mark.parametrize("name", ODD_NAMES)
def test_any_file_name_is_kept_as_a_label_but_never_used_to_store_the_file(
    as_role, ada, name, private_storage
):
    response = upload_by_api(as_role, ada, jpeg_bytes(), name=name)
    assert response.status_code == 201
    image = FaceImage.objects.get()
    assert len(image.original_name) <= 255
    assert image.original_name == response.json()["created"][0]["original_name"]
    assert "gpj.exe" in image.original_name or image.original_name[:4] in name
    assert image.image.name.startswith("faces/") and image.image.name.endswith(".jpg")
    for stored in stored_files(private_storage):
        assert stored.name.isascii() and ".." not in str(stored.relative_to(private_storage))


def test_a_name_in_any_script_shows_on_the_page_escaped(as_role, ada):
    page = upload_on_page(
        as_role, ada, b"not a photo", name="<img src=x onerror=alert(1)> Фото.jpg"
    )
    assert "&lt;img src=x onerror=alert(1)&gt; Фото.jpg" in page
    assert "<img src=x onerror" not in page


# --- polyglots: the payload does not survive re-encoding ----------------------------------


POLYGLOTS = {
    "script-after-the-jpeg": jpeg_bytes() + SCRIPT,
    "script-in-a-jpeg-comment": jpeg_with_script_in_a_comment(),
    "script-in-a-png-text-chunk": png_with_script_in_a_text_chunk(),
    "zip-after-the-jpeg": jpeg_bytes() + b"PK\x03\x04" + SCRIPT,
}


@pytest.mark.parametrize("kind", list(POLYGLOTS))
def test_a_polyglot_is_stored_re_encoded_without_its_payload(as_role, ada, kind, private_storage):
    response = upload_by_api(as_role, ada, POLYGLOTS[kind])
    assert response.status_code == 201
    assert FaceImage.objects.count() == 1
    files = stored_files(private_storage)
    assert len(files) == 4  # photo, thumbnail, face crop, aligned chip
    for stored in files:
        data = stored.read_bytes()
        assert SCRIPT not in data and b"PK\x03\x04" not in data
        assert data[:2] == b"\xff\xd8"


def test_a_sliver_in_a_batch_is_refused_and_the_other_photos_are_stored(
    as_role, ada, private_storage
):
    photos = [jpeg_bytes(0, i) for i in range(4)]
    photos.insert(2, BAD_FILES["very-wide-sliver"][0])
    files = [a_file(data, f"{i}.jpg") for i, data in enumerate(photos)]
    url = reverse("api:identity-images", args=[ada.pk])
    response = as_role("editor").post(url, {"images": files})
    assert response.status_code == 201
    assert len(response.json()["created"]) == 4
    assert "too narrow to hold a face" in str(response.json())
    assert FaceImage.objects.count() == 4
    assert AuditEvent.objects.filter(action="photo.add").get().details["count"] == 4
