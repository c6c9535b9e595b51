"""Review in bulk: many faces, one answer, undo; and the Recent names pass."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from identities.models import FaceImage, Identity, Prediction, PredictionFace
from identities.review import CONFIRM, NAME, REJECT
from tests.identities.recorded import face, record

BULK = reverse("identities:review_bulk")
UNDO = reverse("identities:review_undo")
RECENT = reverse("identities:recent_names")


def faces_of(*predictions):
    return [p.face_rows.get() for p in predictions]


@pytest.fixture
def unknowns(member):
    return faces_of(*(record(member, face(None, 0.2), index=i) for i in range(3)))


def answer(client, faces, decision, **fields):
    data = {"faces": [f.pk for f in faces], "decision": decision} | fields
    return client.post(BULK, data, follow=True)


def test_an_editor_names_three_faces_with_one_answer(member_client, unknowns, ada):
    response = answer(member_client, unknowns, NAME, identity=ada.pk)
    assert response.status_code == 200
    assert "3 faces named Ada Lovelace" in response.content.decode()
    assert ada.images.count() == 3
    states = PredictionFace.objects.values_list("review", flat=True)
    assert set(states) == {PredictionFace.Review.CORRECTED}


def test_a_bulk_answer_with_a_new_name_makes_one_new_person(member_client, unknowns):
    answer(member_client, unknowns, NAME, new_name="  Alan   Turing ")
    assert Identity.objects.get(name="Alan Turing").images.count() == 3


def test_confirming_skips_the_faces_the_model_named_nobody(member_client, member, ada):
    named = faces_of(record(member, face(ada, 0.5), index=1))
    unknown = faces_of(record(member, face(None, 0.2), index=2))
    page = answer(member_client, named + unknown, CONFIRM).content.decode()
    assert "1 face confirmed" in page and "1 was skipped" in page
    assert ada.images.count() == 1
    assert unknown[0].__class__.objects.get(pk=unknown[0].pk).is_pending


def test_a_person_picked_and_a_new_name_typed_is_refused_and_changes_nothing(
    member_client, unknowns, ada
):
    page = answer(member_client, unknowns, NAME, identity=ada.pk, new_name="Alan Turing")
    assert "You picked Ada Lovelace and also typed the new name “Alan Turing”" in (
        page.content.decode()
    )
    assert not Identity.objects.filter(name="Alan Turing").exists()
    assert FaceImage.objects.count() == 0
    assert all(f.is_pending for f in PredictionFace.objects.all())


def test_the_one_face_form_also_refuses_a_person_and_a_new_name(member_client, unknowns, ada):
    url = reverse("identities:review_face", args=[unknowns[0].pk])
    data = {"decision": NAME, "identity": ada.pk, "new_name": "Alan Turing"}
    page = member_client.post(url, data, follow=True).content.decode()
    assert "also typed the new name" in page
    assert PredictionFace.objects.get(pk=unknowns[0].pk).is_pending


def test_the_same_name_picked_and_typed_is_no_conflict(member_client, unknowns, ada):
    answer(member_client, unknowns[:1], NAME, identity=ada.pk, new_name="ada lovelace")
    assert ada.images.count() == 1


def test_a_bulk_answer_with_no_face_ticked_says_so(member_client, unknowns):
    page = member_client.post(BULK, {"decision": REJECT}, follow=True).content.decode()
    assert "Tick the faces you are answering for first." in page
    assert all(f.is_pending for f in PredictionFace.objects.all())


def test_undo_puts_the_faces_back_and_removes_the_photos_and_the_new_person(
    member_client, unknowns
):
    answer(member_client, unknowns, NAME, new_name="Alan Turing")
    page = member_client.get(reverse("identities:review")).content.decode()
    assert "Your last answer: 3 faces named Alan Turing" in page
    page = member_client.post(UNDO, {"next": "/review/"}, follow=True).content.decode()
    assert "Undone: 3 faces are back in review." in page
    assert all(f.is_pending for f in PredictionFace.objects.all())
    assert FaceImage.objects.count() == 0
    assert not Identity.objects.filter(name="Alan Turing").exists()


def test_undo_keeps_a_person_who_existed_before(member_client, unknowns, ada):
    answer(member_client, unknowns, NAME, identity=ada.pk)
    member_client.post(UNDO)
    assert Identity.objects.filter(pk=ada.pk).exists() and ada.images.count() == 0


def test_a_second_undo_has_nothing_to_undo(member_client, unknowns):
    answer(member_client, unknowns, REJECT)
    member_client.post(UNDO)
    page = member_client.post(UNDO, follow=True).content.decode()
    assert "There is no answer to undo." in page


def test_undo_never_takes_back_someone_elses_answer(client, member, make_user, unknowns, ada):
    client.force_login(member)
    answer(client, unknowns, NAME, identity=ada.pk)
    PredictionFace.objects.update(reviewed_by=make_user("editor", "bob"))
    client.post(UNDO)
    assert ada.images.count() == 3
    assert not any(f.is_pending for f in PredictionFace.objects.all())


def test_recent_names_groups_named_faces_by_person_most_doubtful_first(
    member_client, member, ada, grace
):
    record(member, face(ada, 0.97), index=1)
    record(member, face(grace, 0.88), index=2)
    record(member, face(grace, 0.64), index=3)
    old = record(member, face(ada, 0.5), index=4)
    Prediction.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=9))
    record(member, face(None, 0.2), index=5)  # unknown faces are Review's, not here
    page = member_client.get(RECENT).content.decode()
    heading = '<h2><a href="{}">'.format
    assert page.index(heading(grace.get_absolute_url())) < page.index(
        heading(ada.get_absolute_url())
    )  # Grace's 64% is more doubtful than Ada's 97%
    assert page.count('class="card review-item"') == 3
    assert "3 faces named, 2 people" in page
    assert member_client.get(RECENT, {"days": 10}).content.decode().count("review-item") == 4


def test_recent_names_with_a_bad_number_of_days_says_so_and_shows_a_week(member_client):
    page = member_client.get(RECENT, {"days": "-3"}).content.decode()
    assert "Showing the last 7 days." in page


def test_recent_names_and_bulk_answers_are_for_editors(client, make_user, unknowns):
    client.force_login(make_user("viewer", "vic"))
    assert client.get(RECENT).status_code == 403
    response = client.post(BULK, {"faces": [unknowns[0].pk], "decision": REJECT})
    assert response.status_code == 403
    assert unknowns[0].__class__.objects.get(pk=unknowns[0].pk).is_pending


def test_a_bulk_rejection_embeds_the_strangers_in_one_batch(member_client, unknowns, monkeypatch):
    from training import services
    from training.dataset import stranger_faces

    align_faces, batches = services.align_faces, []

    def counted(regions):
        regions = list(regions)
        batches.append(len(regions))
        return align_faces(regions)

    monkeypatch.setattr(services, "align_faces", counted)
    response = answer(member_client, unknowns, REJECT)
    assert response.status_code == 200
    assert batches == [3]
    assert stranger_faces().count() == 3
