"""A photo that is already someone else's is added with a warning that links to them."""

import io

import pytest
from PIL import Image

from identities.duplicates import photos_of_others
from identities.models import FaceImage
from identities.uploads import add_face_image, clean_image
from tests.images import jpeg_bytes

pytestmark = pytest.mark.django_db


def resaved(data, quality=70):
    """The same photo saved again by another program: other bytes, the same face."""
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, "JPEG", quality=quality)
    return out.getvalue()


def upload_page(client, identity, upload, data, name="again.jpg"):
    files = [upload(name, content=data)]
    return client.post(identity.get_absolute_url(), {"photos": files}, follow=True)


def test_the_same_file_for_another_person_is_added_with_a_warning_and_a_link(
    member_client, upload, ada, grace
):
    add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    page = upload_page(member_client, grace, upload, jpeg_bytes(0, 0)).content.decode()
    assert "1 photo added." in page
    assert f'again.jpg: this photo is already one of <a href="{ada.get_absolute_url()}">' in page
    assert grace.images.count() == 1


def test_the_same_photo_saved_again_is_found_by_its_face_embedding(ada, grace):
    add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    again = add_face_image(grace, clean_image(resaved(jpeg_bytes(0, 0))))
    assert again.sha256 != ada.images.get().sha256
    assert [(image, other.identity) for image, other in photos_of_others([again])] == [(again, ada)]


def test_another_photo_of_another_person_brings_no_warning(member_client, upload, ada, grace):
    add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    page = upload_page(member_client, grace, upload, jpeg_bytes(1, 0)).content.decode()
    assert "1 photo added." in page and "is already one of" not in page


def test_another_photo_of_the_same_person_brings_no_warning(ada):
    add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    second = add_face_image(ada, clean_image(jpeg_bytes(0, 1)))
    assert photos_of_others([second]) == []
    assert FaceImage.objects.count() == 2
