import pytest
from django.urls import reverse

from identities.models import FaceImage, Identity
from identities.templatetags.faceweb import private_url
from identities.uploads import add_face_image, clean_image
from tests.conftest import stored_files
from tests.images import encode, group_photo, jpeg_bytes

pytestmark = pytest.mark.django_db


def test_every_page_needs_login(client, ada):
    for url in [
        reverse("identities:list"),
        ada.get_absolute_url(),
        reverse("identities:identify"),
        reverse("training:home"),
    ]:
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


def test_a_member_can_add_a_person(member_client):
    response = member_client.post(reverse("identities:list"), {"name": "  Grace   Hopper "})
    grace = Identity.objects.get()
    assert response.url == grace.get_absolute_url()
    assert (grace.name, grace.slug) == ("Grace Hopper", "grace-hopper")


def test_it_refuses_a_second_person_with_the_same_name(member_client, ada):
    response = member_client.post(reverse("identities:list"), {"name": "ada lovelace"})
    assert "already a person called" in response.content.decode()
    assert Identity.objects.count() == 1


def test_several_photos_upload_at_once_and_show_as_thumbnails(member_client, ada, upload):
    files = [upload(f"{i}.jpg", person=0, index=i) for i in range(3)]
    response = member_client.post(ada.get_absolute_url(), {"photos": files}, follow=True)
    assert "3 photos added." in response.content.decode()
    assert ada.images.count() == 3
    for image in ada.images.all():
        assert private_url(image.thumbnail) in response.content.decode()


def test_a_bad_file_among_good_ones_is_reported_and_the_rest_kept(member_client, ada, upload):
    files = [upload("good.jpg"), upload("notes.jpg", content=b"just text")]
    response = member_client.post(ada.get_absolute_url(), {"photos": files}, follow=True)
    page = response.content.decode()
    assert "1 photo added." in page
    assert "notes.jpg: This file is not an image" in page
    assert ada.images.count() == 1


def test_a_rejected_upload_stores_no_row_and_no_file(member_client, ada, upload, private_storage):
    member_client.post(ada.get_absolute_url(), {"photos": [upload(content=b"GIF89a broken")]})
    assert FaceImage.objects.count() == 0
    assert stored_files(private_storage) == []


def test_media_is_served_to_members_only(client, member, ada):
    image = add_face_image(ada, clean_image(jpeg_bytes()))
    assert client.get(private_url(image.image)).status_code == 302
    client.force_login(member)
    response = client.get(private_url(image.image))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("path", ["../secret_key", "faces/../../secret_key", "models/x.pt"])
def test_media_outside_the_photo_folders_is_not_served(member_client, path):
    assert member_client.get("/media/" + path).status_code == 404


def test_deleting_a_person_asks_first_then_deletes_photos(
    member_client, ada, private_storage, django_capture_on_commit_callbacks
):
    add_face_image(ada, clean_image(jpeg_bytes()))
    url = reverse("identities:delete", args=[ada.slug])
    assert "Delete Ada Lovelace and all their data?" in member_client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        member_client.post(url)
    assert not Identity.objects.exists()
    assert stored_files(private_storage) == []


def test_identify_explains_when_no_model_is_active(member_client, upload):
    response = member_client.post(reverse("identities:identify"), {"photo": upload()})
    assert "No model is active yet" in response.content.decode()


def test_identify_refuses_a_text_file(member_client, upload):
    response = member_client.post(
        reverse("identities:identify"), {"photo": upload("x.jpg", content=b"plain text")}
    )
    assert "not an image" in response.content.decode()


def test_a_member_picks_the_face_in_a_group_photo(member_client, ada):
    image = add_face_image(ada, clean_image(encode(group_photo([0, 1]))))
    url = reverse("identities:choose_face", args=[image.pk])
    page = member_client.get(url).content.decode()
    assert page.count('class="face-box"') == 2
    assert "Pick the face" in member_client.get(ada.get_absolute_url()).content.decode()
    response = member_client.post(url, {"face": "0"})
    assert response.url == ada.get_absolute_url()
    image.refresh_from_db()
    assert image.status == FaceImage.Status.OK


def test_identifying_on_the_page_is_throttled_like_the_api(
    client, make_user, settings, monkeypatch
):
    from django.core.cache import cache
    from rest_framework.throttling import ScopedRateThrottle

    cache.clear()
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] | {"identify": "3/min"}
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"DEFAULT_THROTTLE_RATES": rates}
    # Read once at import by DRF; monkeypatch puts the original back for the tests after.
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)
    client.force_login(make_user("viewer", "quick"))
    url = reverse("identities:identify")
    codes = [client.post(url, {"photo": ""}).status_code for _ in range(4)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429
    assert client.post("/api/v1/identify/", {}).status_code == 429  # one budget
    cache.clear()
