"""The data quality page: photos per person against the minimum, unusable photos,
near-duplicates and class balance."""

import pytest
from PIL import Image

from identities.models import FaceImage, Identity
from identities.quality import NEAR_DUPLICATE_BITS, build_report, dhash, differing_bits
from identities.uploads import add_face_image, clean_image
from tests.images import encode, jpeg_bytes, person_image, shapes_image

pytestmark = pytest.mark.django_db


def test_a_photo_and_its_resized_copy_have_nearly_the_same_dhash():
    photo = person_image(0, 0, size=256)
    copy = photo.resize((180, 180), Image.BILINEAR)
    other = person_image(3, 5, size=256)
    assert differing_bits(dhash(photo), dhash(copy)) <= NEAR_DUPLICATE_BITS
    assert differing_bits(dhash(photo), dhash(other)) > NEAR_DUPLICATE_BITS


def test_the_report_warns_under_the_minimum_and_finds_near_duplicates(settings):
    ada = Identity.objects.create(name="Ada")
    alan = Identity.objects.create(name="Alan")
    for index in range(3):
        add_face_image(ada, clean_image(jpeg_bytes(0, index)))
    add_face_image(ada, clean_image(encode(shapes_image())))
    resized = encode(person_image(0, 0).resize((120, 120)), quality=70)
    add_face_image(alan, clean_image(resized))  # Ada's photo, under Alan's name
    report = build_report(minimum=2)
    rows = {row.identity.name: row for row in report.rows}
    assert (rows["Ada"].usable, rows["Ada"].no_face, rows["Ada"].below_minimum) == (3, 1, False)
    assert (rows["Alan"].usable, rows["Alan"].below_minimum, rows["Alan"].missing) == (1, True, 1)
    assert report.imbalance == 3.0
    pairs = {(a.identity.name, b.identity.name) for a, b, _ in report.near_duplicates}
    assert ("Ada", "Alan") in pairs


def test_the_page_shows_counts_bars_and_warnings(member_client, settings):
    settings.FACEWEB_MIN_PHOTOS_PER_IDENTITY = 10
    ada = Identity.objects.create(name="Ada")
    add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    image = add_face_image(ada, clean_image(jpeg_bytes(0, 1)))
    FaceImage.objects.filter(pk=image.pk).update(status=FaceImage.Status.SEVERAL_FACES)
    page = member_client.get("/quality/").content.decode()
    assert "needs 9 more" in page
    assert 'style="width: 100.0%"' in page
    assert "under 10 usable photos" in page
