import io

import pytest
from PIL import Image

from identities.models import FaceImage, Identity
from identities.uploads import UploadError, add_face_image, choose_face, clean_image, read_upload
from tests.conftest import stored_files
from tests.images import encode, group_photo, jpeg_bytes, person_image, png_bomb, shapes_image

pytestmark = pytest.mark.django_db


def corrupt_png():
    data = bytearray(encode(person_image(0, 0, size=64), "PNG"))
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(16)  # wipe part of the pixel data: the checksum fails
    return bytes(data)


def test_it_accepts_a_jpeg_and_keeps_its_size():
    clean = clean_image(jpeg_bytes(size=80))
    assert (clean.width, clean.height, clean.image.mode) == (80, 80, "RGB")


def test_it_applies_the_exif_orientation():
    image = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    clean = clean_image(encode(image, exif=exif.tobytes()))
    assert (clean.width, clean.height) == (20, 40)


def test_it_makes_transparent_png_white_rgb():
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    clean = clean_image(encode(image, "PNG"))
    assert clean.image.mode == "RGB"
    assert clean.image.getpixel((5, 5)) == (255, 255, 255)


def test_it_converts_grayscale_and_16_bit_images_to_rgb():
    gray = clean_image(encode(Image.new("L", (10, 10), 128), "PNG"))
    deep = clean_image(encode(Image.new("I;16", (10, 10), 65535), "PNG"))
    assert gray.image.getpixel((0, 0)) == (128, 128, 128)
    assert deep.image.getpixel((0, 0)) == (255, 255, 255)


def test_it_reads_the_first_frame_of_an_animated_gif():
    frames = [Image.new("P", (10, 10), i) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    assert clean_image(buffer.getvalue()).image.size == (10, 10)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"hello, I am a text file named photo.jpg", "not an image"),
        (b"<html><script>alert(1)</script></html>", "not an image"),
        (jpeg_bytes()[:300], "damaged or truncated"),
        (corrupt_png(), "damaged or truncated"),
        (png_bomb(), "too many pixels"),
    ],
    ids=["empty", "text", "html", "truncated-jpeg", "corrupt-png", "decompression-bomb"],
)
def test_it_refuses_bad_files_with_a_clear_message(data, message):
    with pytest.raises(UploadError, match=message):
        clean_image(data)


def test_it_refuses_more_pixels_than_the_cap(settings):
    settings.FACEWEB_MAX_PIXELS = 50 * 50
    with pytest.raises(UploadError, match="too many pixels"):
        clean_image(jpeg_bytes(size=64))


def test_it_refuses_a_file_over_the_size_cap(settings):
    settings.FACEWEB_MAX_UPLOAD_BYTES = 100
    with pytest.raises(UploadError, match="larger than"):
        read_upload(io.BytesIO(b"x" * 101))


def test_it_stores_a_re_encoded_copy_under_a_random_name(private_storage):
    identity = Identity.objects.create(name="Ada")
    trailing_script = jpeg_bytes() + b"<script>alert(1)</script>"
    image = add_face_image(
        identity, clean_image(trailing_script), original_name="../../lovelace.jpg"
    )
    stored = (private_storage / image.image.name).read_bytes()
    assert b"<script>" not in stored
    assert "lovelace" not in image.image.name and ".." not in image.image.name
    assert image.image.name.startswith("faces/") and image.thumbnail.name.startswith("thumbs/")


def test_it_refuses_the_same_photo_twice_for_one_person_and_stores_nothing(private_storage):
    identity = Identity.objects.create(name="Ada")
    add_face_image(identity, clean_image(jpeg_bytes()))
    files_before = stored_files(private_storage)
    with pytest.raises(UploadError, match="already"):
        add_face_image(identity, clean_image(jpeg_bytes()))
    assert FaceImage.objects.count() == 1
    assert stored_files(private_storage) == files_before


def test_the_same_photo_may_belong_to_two_people():
    for name in ("Ada", "Grace"):
        add_face_image(Identity.objects.create(name=name), clean_image(jpeg_bytes()))
    assert FaceImage.objects.count() == 2


def test_a_photo_with_one_face_is_usable_and_gets_a_face_crop(private_storage):
    image = add_face_image(Identity.objects.create(name="Ada"), clean_image(jpeg_bytes()))
    assert image.status == FaceImage.Status.OK
    x, y, w, h = image.box
    assert 0 <= x < x + w <= image.width and 0 <= y < y + h <= image.height
    assert Image.open(private_storage / image.face_crop.name).size == (224, 224)


def test_a_photo_without_a_face_is_kept_but_not_used(private_storage):
    image = add_face_image(Identity.objects.create(name="Ada"), clean_image(encode(shapes_image())))
    assert image.status == FaceImage.Status.NO_FACE
    assert not image.face_crop and image.box is None
    assert image.problem == "No face was found, so this photo is not used."


def test_a_group_photo_waits_until_someone_picks_the_face():
    identity = Identity.objects.create(name="Ada")
    image = add_face_image(identity, clean_image(encode(group_photo([0, 1]))))
    assert image.status == FaceImage.Status.SEVERAL_FACES
    assert len(image.candidates) == 2 and not image.face_crop
    choose_face(image, 1)
    image.refresh_from_db()
    assert image.status == FaceImage.Status.OK
    assert image.box == image.candidates[1]["box"] and image.face_crop


def test_picking_a_face_that_is_not_there_changes_nothing():
    identity = Identity.objects.create(name="Ada")
    image = add_face_image(identity, clean_image(encode(group_photo([0, 1]))))
    with pytest.raises(UploadError):
        choose_face(image, 2)
    image.refresh_from_db()
    assert image.status == FaceImage.Status.SEVERAL_FACES


def test_deleting_a_person_deletes_their_files(private_storage, django_capture_on_commit_callbacks):
    identity = Identity.objects.create(name="Ada")
    add_face_image(identity, clean_image(encode(person_image(1, 1))))
    assert stored_files(private_storage)
    with django_capture_on_commit_callbacks(execute=True):
        identity.delete()
    assert stored_files(private_storage) == []
