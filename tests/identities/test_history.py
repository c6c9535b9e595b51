"""The History page: who sees which identifications, and its filters."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from identities.models import Prediction
from identities.review import NAME, review_face
from identities.review_views import HISTORY_PAGE_SIZE
from tests.identities.recorded import face, record


def listed(client, **filters):
    response = client.get(reverse("identities:history"), filters)
    assert response.status_code == 200
    return [p.pk for p in response.context["page"].object_list]


def test_a_viewer_sees_only_their_own_identifications(client, make_user, member, ada):
    viewer = make_user("viewer")
    own = record(viewer, face(ada, 0.9))
    record(member, face(ada, 0.9))
    client.force_login(viewer)
    assert listed(client) == [own.pk]
    assert "Asked by" not in client.get(reverse("identities:history")).content.decode()


def test_someone_without_a_role_cannot_see_the_history(client, make_user):
    client.force_login(make_user(None))
    assert client.get(reverse("identities:history")).status_code == 403


def test_an_admin_sees_everyone_and_filters_by_who_asked(client, make_user, member, ada):
    admin = make_user("admin")
    by_member = record(member, face(ada, 0.9))
    by_admin = record(admin, face(ada, 0.9))
    client.force_login(admin)
    assert listed(client) == [by_admin.pk, by_member.pk]
    assert listed(client, asked_by=member.pk) == [by_member.pk]


def test_filters_by_person_unknown_and_confidence(member_client, member, ada):
    named = record(member, face(ada, 0.9))
    unsure = record(member, face(ada, 0.4))
    unknown = record(member, face(None, 0.2))
    assert listed(member_client, identity=ada.pk) == [unsure.pk, named.pk]
    assert listed(member_client, unknown_only="on") == [unknown.pk]
    assert listed(member_client, below="50") == [unknown.pk, unsure.pk]


def test_a_person_filter_finds_faces_a_reviewer_named_them(member_client, member, ada):
    corrected = record(member, face(None, 0.2))
    review_face(corrected.face_rows.get(), NAME, member, identity=ada)
    assert listed(member_client, identity=ada.pk) == [corrected.pk]


def test_filters_by_date_range(member_client, member, ada):
    old = record(member, face(ada, 0.9))
    Prediction.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    new = record(member, face(ada, 0.9))
    today = timezone.localdate()
    assert listed(member_client, since=today.isoformat()) == [new.pk]
    assert listed(member_client, until=(today - timedelta(days=5)).isoformat()) == [old.pk]


def test_bad_filters_explain_themselves_and_list_everything_unfiltered(member_client, member):
    record(member, face(None, 0.2))
    response = member_client.get(
        reverse("identities:history"),
        {"below": "lots", "since": "2025-02-01", "until": "2025-01-01"},
    )
    assert response.status_code == 200
    assert "Enter a number" in response.content.decode()
    assert len(response.context["page"].object_list) == 1


def test_the_history_is_paginated(member_client, member, ada):
    for _ in range(HISTORY_PAGE_SIZE + 1):
        record(member, face(ada, 0.9))
    assert len(listed(member_client)) == HISTORY_PAGE_SIZE
    assert len(listed(member_client, page=2)) == 1


def test_a_viewer_is_offered_only_the_people_named_in_their_own_identifications(
    client, make_user, member, ada, grace
):
    viewer = make_user("viewer")
    record(viewer, face(ada, 0.9))
    record(member, face(grace, 0.9))
    client.force_login(viewer)
    page = client.get(reverse("identities:history")).content.decode()
    assert "Ada Lovelace" in page and "Grace Hopper" not in page
    response = client.get(reverse("identities:history"), {"identity": grace.pk})
    assert not response.context["form"].is_valid()
