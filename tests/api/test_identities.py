import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from identities.models import FaceImage, Identity
from identities.uploads import add_face_image, clean_image
from tests.conftest import stored_files
from tests.images import jpeg_bytes
from training.models import ModelVersion


def identities_url():
    return reverse("api:identity-list")


def identity_url(identity):
    return reverse("api:identity-detail", args=[identity.pk])


@pytest.fixture
def ada():
    return Identity.objects.create(name="Ada Lovelace")


def test_an_editor_adds_a_person_and_the_name_is_tidied(api, cast):
    response = api("editor").post(identities_url(), {"name": "  Grace   Hopper "}, format="json")
    assert response.status_code == 201
    grace = Identity.objects.get()
    assert response.json() | {"created_at": None, "updated_at": None} == {
        "id": grace.pk,
        "name": "Grace Hopper",
        "slug": "grace-hopper",
        "notes": "",
        "is_active": True,
        "photo_count": 0,
        "usable_photo_count": 0,
        "created_by": "editor-user",
        "created_at": None,
        "updated_at": None,
    }
    assert grace.created_by == cast["editor"]
    assert AuditEvent.objects.get().action == "identity.create"


def test_a_second_person_with_the_same_name_in_other_case_is_refused(api, ada):
    response = api("editor").post(identities_url(), {"name": "ada LOVELACE"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": "name: There is already a person called ada LOVELACE.",
            "details": {"name": ["There is already a person called ada LOVELACE."]},
        }
    }
    assert Identity.objects.count() == 1


def test_a_person_needs_a_name(api):
    response = api("editor").post(identities_url(), {"name": "   "}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"name": ["This field may not be blank."]}


def test_the_list_counts_photos_and_searches_by_name(api, ada):
    add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    Identity.objects.create(name="Alan Turing")
    editor = api("editor")
    body = editor.get(identities_url()).json()
    assert [(p["name"], p["photo_count"], p["usable_photo_count"]) for p in body["results"]] == [
        ("Ada Lovelace", 1, 1),
        ("Alan Turing", 0, 0),
    ]
    found = editor.get(identities_url(), {"search": "turi"}).json()
    assert [p["name"] for p in found["results"]] == ["Alan Turing"]


def test_the_list_is_paginated_by_fifty(api):
    for n in range(51):
        Identity.objects.create(name=f"Person {n:02}")
    editor = api("editor")
    first = editor.get(identities_url()).json()
    assert (first["count"], len(first["results"]), first["previous"]) == (51, 50, None)
    second = editor.get(first["next"]).json()
    assert [p["name"] for p in second["results"]] == ["Person 50"]


def test_patch_renames_a_person_and_is_audited(api, ada):
    response = api("editor").patch(identity_url(ada), {"name": "Ada King"}, format="json")
    assert response.status_code == 200
    ada.refresh_from_db()
    assert (ada.name, response.json()["name"]) == ("Ada King", "Ada King")
    event = AuditEvent.objects.get()
    assert (event.action, event.details) == ("identity.change", {"fields": ["name"]})


def test_renaming_onto_another_persons_name_is_refused(api, ada):
    Identity.objects.create(name="Alan Turing")
    response = api("editor").patch(identity_url(ada), {"name": "alan turing"}, format="json")
    assert response.status_code == 400
    assert Identity.objects.filter(name="Ada Lovelace").exists()


def test_put_is_not_offered(api, ada):
    response = api("editor").put(identity_url(ada), {"name": "X"}, format="json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_deleting_a_person_removes_their_photos_and_files_and_marks_models_stale(
    api, ada, private_storage, django_capture_on_commit_callbacks
):
    add_face_image(ada, clean_image(jpeg_bytes(0, 0)))
    version = ModelVersion.objects.create(
        artifact="models/x.pt", sha256="0" * 64, architecture="resnet18",
        classes=[{"id": ada.pk, "name": ada.name, "folder": ada.slug}], dataset_hash="h",
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = api("editor").delete(identity_url(ada))
    assert response.status_code == 204
    assert not Identity.objects.exists() and not FaceImage.objects.exists()
    assert stored_files(private_storage) == []
    version.refresh_from_db()
    assert version.is_stale
    event = AuditEvent.objects.get()
    assert (event.action, event.target_repr, event.details) == (
        "identity.delete",
        "Ada Lovelace",
        {"photos": 1, "predictions": 0},
    )


def test_an_unknown_person_is_a_json_404(api):
    response = api("editor").get(reverse("api:identity-detail", args=[999]))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_person_created_by_someone_else_a_moment_ago_is_a_400_not_a_500(api, ada, monkeypatch):
    # Parallel requests all pass the name check before any of them is saved.
    monkeypatch.setattr("api.serializers.clean_new_name", lambda name, exclude_pk=None: name)
    for name in ("Ada Lovelace", "ADA LOVELACE"):
        response = api("editor").post(identities_url(), {"name": name}, format="json")
        assert response.status_code == 400
        assert "already a person called" in response.json()["error"]["message"]
    assert Identity.objects.count() == 1


@pytest.mark.parametrize(
    "name",
    ["\u200b", "\u200bAda", "Ada\u202eecalevoL", "Ada\x07", "Ada\x00Lovelace", "\u2066Ada\u2069"],
)
def test_a_name_with_invisible_or_control_characters_is_refused(api, name):
    response = api("editor").post(identities_url(), {"name": name}, format="json")
    assert response.status_code == 400
    assert not Identity.objects.exists()


def test_names_are_stored_in_one_unicode_form_and_compared_in_any_case(api):
    decomposed = "Zoe\u0308  Ångström"
    response = api("editor").post(identities_url(), {"name": decomposed}, format="json")
    assert response.status_code == 201
    assert Identity.objects.get().name == "Zoë Ångström"
    # Composed or decomposed, it is the same name (as typed on another system).
    again = api("editor").post(identities_url(), {"name": "Zoë Ångström"}, format="json")
    assert again.status_code == 400
