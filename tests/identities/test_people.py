"""Merge, split, move and bulk delete: confirmation first, then the change, the audit
record and stale models; viewers are refused and bad input changes nothing."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from identities.models import FaceImage, Identity
from identities.uploads import add_face_image, clean_image
from tests.images import encode, jpeg_bytes, shapes_image
from training.models import ModelVersion

pytestmark = pytest.mark.django_db


def person(name, *photos):
    identity = Identity.objects.create(name=name)
    for data in photos:
        add_face_image(identity, clean_image(data))
    return identity


def trained_on(*identities):
    return ModelVersion.objects.create(
        artifact="models/x.pt",
        sha256="0" * 64,
        architecture="resnet18",
        classes=[{"id": i.pk, "name": i.name, "folder": i.slug} for i in identities],
        dataset_hash="x",
    )


@pytest.fixture
def ada_and_alan():
    ada = person("Ada", jpeg_bytes(0, 0), jpeg_bytes(0, 1))
    alan = person("Alan", jpeg_bytes(0, 1), jpeg_bytes(1, 0))  # one photo in common
    return ada, alan


def selection(*identities):
    return "&".join(f"identities={i.pk}" for i in identities)


def test_merging_first_shows_what_will_happen(member_client, ada_and_alan):
    ada, alan = ada_and_alan
    page = member_client.get(f"/manage/merge/?{selection(ada, alan)}").content.decode()
    assert "Alan's 1 photo moves to Ada; 1 photo they both have is kept once" in page
    assert Identity.objects.count() == 2


def test_merging_moves_every_photo_keeps_duplicates_once_and_marks_models_stale(
    member_client, ada_and_alan
):
    ada, alan = ada_and_alan
    version = trained_on(ada, alan)
    data = {"identities": [ada.pk, alan.pk], "keep": alan.pk}
    response = member_client.post("/manage/merge/", data)
    assert response.status_code == 302 and response.url == alan.get_absolute_url()
    assert list(Identity.objects.values_list("name", flat=True)) == ["Alan"]
    assert alan.images.count() == 3 and FaceImage.objects.count() == 3
    event = AuditEvent.objects.get(action="identity.merge")
    assert event.details == {"merged": "Ada", "merged_id": ada.pk, "moved": 1, "duplicates": 1}
    version.refresh_from_db()
    assert version.is_stale


def test_a_merge_keeps_the_usable_copy_of_a_photo_both_have(member_client):
    no_face = encode(shapes_image())
    ada = person("Ada", no_face)
    alan = person("Alan")
    copy = add_face_image(alan, clean_image(no_face))
    FaceImage.objects.filter(pk=copy.pk).update(status=FaceImage.Status.OK)
    member_client.post("/manage/merge/", {"identities": [ada.pk, alan.pk], "keep": ada.pk})
    assert list(ada.images.values_list("pk", flat=True)) == [copy.pk]


def test_merging_needs_exactly_two_people_and_changes_nothing_otherwise(
    member_client, ada_and_alan
):
    ada, _ = ada_and_alan
    response = member_client.post("/manage/merge/", {"identities": [ada.pk], "keep": ada.pk})
    assert response.status_code == 302
    assert Identity.objects.count() == 2 and FaceImage.objects.count() == 4
    assert not AuditEvent.objects.filter(action="identity.merge").exists()


def test_a_merge_keeping_a_third_persons_name_is_refused(member_client, ada_and_alan):
    ada, alan = ada_and_alan
    eve = person("Eve")
    data = {"identities": [ada.pk, alan.pk], "keep": eve.pk}
    assert member_client.post("/manage/merge/", data).status_code == 200  # form shown again
    assert Identity.objects.count() == 3 and FaceImage.objects.count() == 4


def test_splitting_makes_a_new_person_of_the_chosen_photos(member_client, ada_and_alan):
    ada, _ = ada_and_alan
    version = trained_on(ada)
    chosen = ada.images.first()
    page = member_client.get(f"/people/{ada.slug}/split/?images={chosen.pk}").content.decode()
    assert "Make a new person of 1 photo" in page
    response = member_client.post(
        f"/people/{ada.slug}/split/", {"images": [chosen.pk], "name": "  Ada   Byron "}
    )
    byron = Identity.objects.get(name="Ada Byron")
    assert response.url == byron.get_absolute_url()
    assert list(byron.images.all()) == [chosen] and ada.images.count() == 1
    assert AuditEvent.objects.filter(action="identity.split").exists()
    version.refresh_from_db()
    assert version.is_stale


def test_splitting_into_a_taken_name_changes_nothing(member_client, ada_and_alan):
    ada, _ = ada_and_alan
    chosen = ada.images.first()
    response = member_client.post(
        f"/people/{ada.slug}/split/", {"images": [chosen.pk], "name": "alan"}
    )
    assert "There is already a person called alan" in response.content.decode()
    assert Identity.objects.count() == 2 and ada.images.count() == 2


def test_photos_of_someone_else_cannot_be_split_off(member_client, ada_and_alan):
    ada, alan = ada_and_alan
    theirs = alan.images.first()
    response = member_client.post(
        f"/people/{ada.slug}/split/", {"images": [theirs.pk], "name": "New"}
    )
    assert response.status_code == 302
    assert Identity.objects.count() == 2 and alan.images.count() == 2


def test_moving_photos_confirms_then_moves_and_drops_ones_the_target_has(
    member_client, ada_and_alan
):
    ada, alan = ada_and_alan
    images = list(ada.images.order_by("pk"))  # the second is also among Alan's photos
    data = {"images": [i.pk for i in images], "target": alan.pk}
    page = member_client.post(f"/people/{ada.slug}/move/", data).content.decode()
    assert "will move from Ada to <b>Alan</b>" in page and ada.images.count() == 2
    response = member_client.post(f"/people/{ada.slug}/move/", data | {"confirm": "1"})
    assert response.status_code == 302
    assert ada.images.count() == 0 and alan.images.count() == 3
    assert AuditEvent.objects.get(action="photo.move").details == {
        "source": "Ada",
        "moved": 1,
        "duplicates_removed": 1,
    }


def test_bulk_delete_confirms_then_deletes_people_photos_and_files(
    member_client, ada_and_alan, private_storage, django_capture_on_commit_callbacks
):
    ada, alan = ada_and_alan
    keep = person("Keep", jpeg_bytes(2, 0))
    version = trained_on(ada, keep)
    page = member_client.get(f"/manage/delete/?{selection(ada, alan)}").content.decode()
    assert "Delete 2 people?" in page and Identity.objects.count() == 3
    with django_capture_on_commit_callbacks(execute=True):
        member_client.post("/manage/delete/", {"identities": [ada.pk, alan.pk]})
    assert list(Identity.objects.values_list("name", flat=True)) == ["Keep"]
    assert FaceImage.objects.count() == 1
    assert len([p for p in (private_storage / "faces").iterdir()]) == 1
    assert AuditEvent.objects.filter(action="identity.delete").count() == 2
    version.refresh_from_db()
    assert version.is_stale


@pytest.mark.parametrize(
    "method,url",
    [
        ("get", "/manage/merge/"),
        ("post", "/manage/merge/"),
        ("post", "/manage/delete/"),
        ("get", "/people/ada/split/"),
        ("post", "/people/ada/move/"),
        ("get", "/quality/"),
    ],
)
def test_viewers_may_not_manage_people(client, make_user, ada_and_alan, method, url):
    ada, alan = ada_and_alan
    client.force_login(make_user("viewer"))
    data = {"identities": [ada.pk, alan.pk], "keep": ada.pk, "images": [1], "target": alan.pk}
    assert getattr(client, method)(url, data).status_code == 403
    assert Identity.objects.count() == 2 and FaceImage.objects.count() == 4


def test_the_api_merges_splits_and_moves(member_client, ada_and_alan):
    ada, alan = ada_and_alan
    eve = person("Eve", jpeg_bytes(3, 0))
    split = member_client.post(
        f"/api/v1/identities/{eve.pk}/split/",
        {"images": [eve.images.get().pk], "name": "Eve Two"},
        content_type="application/json",
    )
    assert split.status_code == 201 and split.json()["photo_count"] == 1
    moved = member_client.post(
        f"/api/v1/identities/{split.json()['id']}/move/",
        {
            "images": list(
                Identity.objects.get(name="Eve Two").images.values_list("pk", flat=True)
            ),
            "to": ada.pk,
        },
        content_type="application/json",
    )
    assert moved.json() == {"moved": 1, "duplicates_removed": 0}
    merged = member_client.post(
        f"/api/v1/identities/{alan.pk}/merge/", {"into": ada.pk}, content_type="application/json"
    )
    assert merged.status_code == 200
    assert merged.json()["identity"]["name"] == "Ada" and merged.json()["duplicates"] == 1
    assert ada.images.count() == 4


def test_the_api_refuses_photos_of_another_person(member_client, ada_and_alan):
    ada, alan = ada_and_alan
    response = member_client.post(
        f"/api/v1/identities/{ada.pk}/move/",
        {"images": [alan.images.first().pk], "to": alan.pk},
        content_type="application/json",
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
    assert ada.images.count() == 2 and alan.images.count() == 2


def test_the_admin_add_form_keeps_the_name_rules(client, make_user):
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser("root", "root@example.org", "x-pw-12345!")
    client.force_login(root)
    Identity.objects.create(name="Donald Rumsfeld")
    url = reverse("admin:identities_identity_add")
    inline = {"images-TOTAL_FORMS": "0", "images-INITIAL_FORMS": "0", "is_active": "on"}
    for name in ("donald rumsfeld", "\u200bLaura Bush", "Ada\u202eecalevoL"):
        response = client.post(url, inline | {"name": name})
        assert response.status_code == 200, name  # the form again, with the error
    assert client.post(url, inline | {"name": "  Laura   Bush "}).status_code == 302
    assert sorted(Identity.objects.values_list("name", flat=True)) == [
        "Donald Rumsfeld",
        "Laura Bush",
    ]
