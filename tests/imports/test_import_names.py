"""The names an import gives its people: shown, tidied, edited in the preview."""

import pytest

from identities.models import Identity
from imports.models import BulkImport
from imports.services import tidy_name
from imports.worker import run_import
from tests.images import jpeg_bytes

from .zips import make_zip

pytestmark = pytest.mark.django_db


def zip_of(*folders):
    return make_zip(
        {f"{folder}/{i}.jpg": jpeg_bytes(n, i) for n, folder in enumerate(folders) for i in (0, 1)}
    )


@pytest.fixture
def greenspan(post_zip):
    post_zip(zip_of("Alan_Greenspan", "grace.hopper"))
    return BulkImport.objects.get()


def names(bulk):
    bulk.refresh_from_db()
    return [(p["name"], bool(p["identity_id"])) for p in bulk.people]


def rename(client, bulk, **fields):
    data = {"current": [p["name"] for p in bulk.people]} | fields
    return client.post(f"/imports/{bulk.pk}/names/", data, follow=True)


@pytest.mark.parametrize(
    "folder, name",
    [
        ("Alan_Greenspan", "Alan Greenspan"),
        ("Alan.Greenspan", "Alan Greenspan"),
        ("J._Smith", "J. Smith"),
        ("Mary__Ann_Evans", "Mary Ann Evans"),
        ("R2.D2", "R2.D2"),
    ],
)
def test_tidying_a_folder_name_turns_underscores_and_dots_between_letters_into_spaces(folder, name):
    assert tidy_name(folder) == name


def test_the_preview_shows_the_name_each_folder_will_get_and_offers_a_tidy_one(
    member_client, greenspan
):
    page = member_client.get(greenspan.get_absolute_url()).content.decode()
    assert 'value="Alan_Greenspan"' in page and "or “Alan Greenspan”?" in page
    assert "Turn _ and . into spaces" in page


def test_the_tidy_button_renames_every_folder_and_matches_people_in_any_case(
    member_client, greenspan
):
    Identity.objects.create(name="Grace Hopper")
    page = rename(member_client, greenspan, name=["Alan_Greenspan", "grace.hopper"], tidy="1")
    assert "2 people renamed." in page.content.decode()
    assert names(greenspan) == [("Alan Greenspan", False), ("grace hopper", True)]


def test_a_name_edited_in_the_preview_is_the_one_created(member_client, greenspan):
    rename(member_client, greenspan, name=["Alan Greenspan", "Grace Brewster Hopper"])
    assert names(greenspan) == [("Alan Greenspan", False), ("Grace Brewster Hopper", False)]
    member_client.post(f"/imports/{greenspan.pk}/confirm/")  # queued after the commit
    run_import(greenspan.pk)  # what the worker then does
    assert sorted(Identity.objects.values_list("name", flat=True)) == [
        "Alan Greenspan",
        "Grace Brewster Hopper",
    ]


def test_an_empty_or_invisible_name_is_refused_and_changes_nothing(member_client, greenspan):
    page = rename(member_client, greenspan, name=["   ", "grace.hopper"]).content.decode()
    assert "Alan_Greenspan: A name is needed." in page
    page = rename(member_client, greenspan, name=["Alan\u200bGreenspan", "x"]).content.decode()
    assert "invisible characters" in page
    assert names(greenspan) == [("Alan_Greenspan", False), ("grace.hopper", False)]


def test_names_cannot_change_once_the_import_started(member_client, greenspan):
    BulkImport.objects.filter(pk=greenspan.pk).update(status=BulkImport.Status.QUEUED)
    page = rename(member_client, greenspan, name=["Alan Greenspan", "x"]).content.decode()
    assert "its names can no longer change" in page
    assert names(greenspan)[0][0] == "Alan_Greenspan"
