import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import AuditEvent
from identities.models import FaceImage, Identity
from identities.uploads import add_face_image, clean_image
from tests.conftest import stored_files
from tests.images import encode, group_photo, jpeg_bytes


@pytest.fixture
def ada():
    return Identity.objects.create(name="Ada Lovelace")


def images_url(identity):
    return reverse("api:identity-images", args=[identity.pk])


def image_url(image, kind=None):
    args = [image.identity_id, image.pk] + ([kind] if kind else [])
    return reverse("api:image-file" if kind else "api:image-detail", args=args)


def jpeg(name="photo.jpg", person=0, index=0, content=None):
    data = jpeg_bytes(person, index) if content is None else content
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def test_several_photos_upload_at_once_with_their_face_boxes(api, ada):
    files = [jpeg(f"{i}.jpg", index=i) for i in range(3)]
    response = api("editor").post(images_url(ada), {"images": files}, format="multipart")
    assert response.status_code == 201
    body = response.json()
    assert body["refused"] == []
    assert [image["original_name"] for image in body["created"]] == ["0.jpg", "1.jpg", "2.jpg"]
    first = body["created"][0]
    assert first["status"] == "ok" and len(first["box"]) == 4
    assert first["urls"]["thumbnail"].endswith(f"/images/{first['id']}/thumbnail/")
    assert ada.images.count() == 3
    event = AuditEvent.objects.get()
    assert (event.action, event.details) == ("photo.add", {"count": 3})


def test_a_photo_with_several_faces_is_stored_with_a_status_saying_so(api, ada):
    group = jpeg(content=encode(group_photo([0, 1])))
    response = api("editor").post(images_url(ada), {"images": [group]}, format="multipart")
    (image,) = response.json()["created"]
    assert (image["status"], image["box"]) == ("several_faces", None)
    assert image["problem"].startswith("Several faces")


def test_a_text_file_named_jpg_is_refused_and_nothing_is_stored(api, ada, private_storage):
    fake = jpeg("notes.jpg", content=b"just some text, not a photo")
    response = api("editor").post(images_url(ada), {"images": [fake]}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid_upload",
            "message": "This file is not an image faceweb can read.",
            "details": {
                "refused": [
                    {"name": "notes.jpg", "reason": "This file is not an image faceweb can read."}
                ]
            },
        }
    }
    assert not FaceImage.objects.exists()
    assert stored_files(private_storage) == []
    assert not AuditEvent.objects.exists()


def test_a_bad_file_among_good_ones_is_listed_and_the_rest_kept(api, ada):
    files = [jpeg("good.jpg"), jpeg("truncated.jpg", content=jpeg_bytes(0, 1)[:300])]
    response = api("editor").post(images_url(ada), {"images": files}, format="multipart")
    assert response.status_code == 201
    body = response.json()
    assert [image["original_name"] for image in body["created"]] == ["good.jpg"]
    assert [r["name"] for r in body["refused"]] == ["truncated.jpg"]
    assert "damaged or truncated" in body["refused"][0]["reason"]


def test_the_same_photo_twice_is_refused(api, ada):
    add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    response = api("editor").post(images_url(ada), {"images": [jpeg()]}, format="multipart")
    assert response.status_code == 400
    assert "already among Ada Lovelace's photos" in response.json()["error"]["message"]
    assert ada.images.count() == 1


def test_an_upload_without_files_is_refused(api, ada):
    response = api("editor").post(images_url(ada), {"photos": [jpeg()]}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {
        "images": ["Send one or more files as `images`."]
    }


def test_too_many_files_at_once_are_refused(api, ada, settings):
    settings.FACEWEB_MAX_FILES_PER_UPLOAD = 2
    files = [jpeg(f"{i}.jpg", index=i) for i in range(3)]
    response = api("editor").post(images_url(ada), {"images": files}, format="multipart")
    assert response.status_code == 400
    assert not FaceImage.objects.exists()


def test_json_uploads_are_not_understood(api, ada):
    response = api("editor").post(images_url(ada), {"images": ["x"]}, format="json")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_a_persons_photos_are_listed_and_served(api, ada):
    image = add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    editor = api("editor")
    listed = editor.get(images_url(ada)).json()
    assert [i["id"] for i in listed["results"]] == [image.pk]
    for kind in ("image", "thumbnail", "face_crop"):
        response = editor.get(image_url(image, kind), HTTP_ACCEPT="image/*")
        assert response.status_code == 200
        assert response["Content-Type"] == "image/jpeg"
        assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"


def test_an_unknown_file_kind_is_a_404(api, ada):
    image = add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    response = api("editor").get(image_url(image, "original"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_deleting_a_photo_removes_it_and_is_audited(api, ada, django_capture_on_commit_callbacks):
    image = add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    with django_capture_on_commit_callbacks(execute=True):
        response = api("editor").delete(image_url(image))
    assert response.status_code == 204
    assert not ada.images.exists()
    assert AuditEvent.objects.get().action == "photo.delete"


def test_a_photo_is_only_found_under_its_own_person(api, ada):
    image = add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    other = Identity.objects.create(name="Alan Turing")
    wrong = reverse("api:image-detail", args=[other.pk, image.pk])
    assert api("editor").delete(wrong).status_code == 404
    assert ada.images.count() == 1


TOO_LARGE_FOR_ANY_ROW = 2**80


@pytest.mark.parametrize("number", [2**63, TOO_LARGE_FOR_ANY_ROW])
@pytest.mark.parametrize("kind", ["", "image/"])
def test_an_id_too_large_for_the_database_in_the_path_is_a_json_404(api, ada, number, kind):
    image = add_face_image(ada, clean_image(jpeg_bytes()))
    response = api("editor").get(f"/api/v1/identities/{number}/images/{image.pk}/{kind}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["split", "move"])
def test_a_photo_id_too_large_for_the_database_is_a_400(api, ada, path):
    other = Identity.objects.create(name="Alan Turing")
    body = {"images": [TOO_LARGE_FOR_ANY_ROW], "name": "Someone Else", "to": other.pk}
    response = api("editor").post(f"/api/v1/identities/{ada.pk}/{path}/", body, format="json")
    assert response.status_code == 400
    assert "images" in response.json()["error"]["details"]
