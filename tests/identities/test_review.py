"""Reviewing identified faces: the Review inbox, the result page and their one code path."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from identities.grouping import unknown_faces
from identities.models import FaceImage, Identity, PredictionFace
from identities.review import CONFIRM, NAME, REJECT, AlreadyReviewed, ReviewError, review_face
from tests.identities.recorded import face, record


def review_url(row):
    return reverse("identities:review_face", args=[row.pk])


def only_face(prediction):
    return prediction.face_rows.get()


def test_confirming_a_face_makes_it_a_training_photo_with_its_provenance(member, ada):
    row = only_face(record(member, face(ada, 0.5)))
    row, image = review_face(row, CONFIRM, member)
    assert row.review == PredictionFace.Review.CONFIRMED
    assert (row.reviewed_identity, row.reviewed_by) == (ada, member)
    assert image.identity == ada and image.status == FaceImage.Status.OK
    assert (image.source, image.source_face, image.uploaded_by) == ("review", row, member)
    assert image.face_crop and image.box == row.crop_box


def test_an_editor_names_an_unknown_face_on_the_review_page(member_client, member, ada):
    row = only_face(record(member, face(None, 0.3)))
    response = member_client.post(review_url(row), {"decision": NAME, "identity": ada.pk})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.review == PredictionFace.Review.CORRECTED and row.reviewed_identity == ada
    assert ada.images.get().source_face == row


def test_a_face_named_with_a_new_name_creates_that_person(member_client, member):
    row = only_face(record(member, face(None, 0.3)))
    member_client.post(review_url(row), {"decision": NAME, "new_name": "  Alan   Turing "})
    alan = Identity.objects.get(name="Alan Turing")
    assert alan.images.count() == 1 and alan.created_by == member


def test_a_new_name_that_exists_in_another_case_reuses_that_person(member, ada):
    row = only_face(record(member, face(None, 0.3)))
    review_face(row, NAME, member, new_name="ada lovelace")
    assert Identity.objects.count() == 1 and ada.images.count() == 1


def test_reviewing_a_face_twice_is_refused_and_changes_nothing(member, make_user, ada, grace):
    row = only_face(record(member, face(ada, 0.5)))
    review_face(row, CONFIRM, member)
    other = make_user("editor", "bob")
    with pytest.raises(AlreadyReviewed):
        review_face(PredictionFace.objects.get(pk=row.pk), NAME, other, identity=grace)
    row.refresh_from_db()
    assert (row.reviewed_identity, row.reviewed_by) == (ada, member)
    assert grace.images.count() == 0 and FaceImage.objects.count() == 1


def test_a_second_click_on_the_page_says_it_was_already_reviewed(member_client, member, ada):
    row = only_face(record(member, face(ada, 0.5)))
    member_client.post(review_url(row), {"decision": CONFIRM})
    response = member_client.post(review_url(row), {"decision": REJECT}, follow=True)
    assert "already been reviewed" in response.content.decode()
    assert PredictionFace.objects.get().review == PredictionFace.Review.CONFIRMED


def test_a_viewer_cannot_review_a_face(client, make_user, member, ada):
    row = only_face(record(member, face(ada, 0.5)))
    client.force_login(make_user("viewer"))
    assert client.post(review_url(row), {"decision": CONFIRM}).status_code == 403
    assert client.get(reverse("identities:review")).status_code == 403
    assert PredictionFace.objects.get().is_pending and not FaceImage.objects.exists()


def test_a_person_that_does_not_exist_changes_nothing(member_client, member):
    row = only_face(record(member, face(None, 0.3)))
    response = member_client.post(review_url(row), {"decision": NAME, "identity": 999}, follow=True)
    assert "does not exist" in response.content.decode()
    assert PredictionFace.objects.get().is_pending
    assert not FaceImage.objects.exists() and not AuditEvent.objects.filter(action="face.review")


def test_naming_without_a_person_or_a_name_changes_nothing(member):
    row = only_face(record(member, face(None, 0.3)))
    with pytest.raises(ReviewError):
        review_face(row, NAME, member, new_name="   ")
    assert PredictionFace.objects.get().is_pending and not Identity.objects.exists()


def test_confirming_a_face_the_model_did_not_name_is_refused(member):
    row = only_face(record(member, face(None, 0.3)))
    with pytest.raises(ReviewError, match="named nobody"):
        review_face(row, CONFIRM, member)
    assert PredictionFace.objects.get().is_pending


def test_a_rejected_face_is_remembered_and_never_offered_or_added_again(member, ada):
    row = only_face(record(member, face(None, 0.2)))
    review_face(row, REJECT, member)
    assert row.review == PredictionFace.Review.REJECTED and not FaceImage.objects.exists()
    assert row not in PredictionFace.objects.to_review(0.6)
    assert row not in unknown_faces()
    from identities.review import name_group

    _, named = name_group([PredictionFace.objects.get(pk=row.pk)], member, identity=ada)
    assert named == 0 and not ada.images.exists()


def test_every_decision_is_audited_with_who_and_what(member, ada):
    rows = record(member, face(ada, 0.5), face(None, 0.2), face(None, 0.2)).face_rows.all()
    review_face(rows[0], CONFIRM, member)
    review_face(rows[1], NAME, member, new_name="Grace Hopper")
    review_face(rows[2], REJECT, member)
    events = AuditEvent.objects.filter(action="face.review").order_by("id")
    assert [e.details["decision"] for e in events] == ["confirmed", "corrected", "rejected"]
    assert {e.actor for e in events} == {member}
    assert AuditEvent.objects.filter(action="identity.create", target_repr="Grace Hopper").exists()


def test_the_inbox_holds_unknown_and_unsure_faces_oldest_first(
    member_client, member, ada, settings
):
    settings.FACEWEB_REVIEW_BELOW_CONFIDENCE = 0.6
    first = record(member, face(None, 0.2))
    record(member, face(ada, 0.95))  # sure: not for review
    unsure = record(member, face(ada, 0.55))
    response = member_client.get(reverse("identities:review"))
    listed = list(response.context["page"].object_list)
    assert listed == [only_face(first), only_face(unsure)]
    assert "Correct: Ada Lovelace" in response.content.decode()


def test_a_face_whose_photos_are_gone_is_recorded_but_adds_no_photo(member, ada, settings):
    settings.FACEWEB_KEEP_PREDICTION_PHOTOS = False
    row = only_face(record(member, face(None, 0.3)))
    assert not row.face_crop and not row.prediction.photo
    row, image = review_face(row, NAME, member, identity=ada)
    assert image is None and row.review == PredictionFace.Review.CORRECTED
    assert not ada.images.exists()


def test_the_result_page_offers_the_answers_to_editors_only(client, make_user, ada):
    viewer, admin = make_user("viewer"), make_user("admin")
    prediction = record(viewer, face(ada, 0.5))
    url = prediction.get_absolute_url()
    client.force_login(viewer)
    assert "Not anyone we know" not in client.get(url).content.decode()
    client.force_login(admin)
    page = client.get(url).content.decode()
    assert "Not anyone we know" in page and "Correct: Ada Lovelace" in page


def test_a_reviewed_face_shows_its_answer_on_the_result_page(client, make_user, ada):
    admin = make_user("admin")
    prediction = record(admin, face(None, 0.3))
    review_face(only_face(prediction), NAME, admin, identity=ada)
    client.force_login(admin)
    page = client.get(prediction.get_absolute_url()).content.decode()
    # The confirmed name comes first, then who confirmed it, then the model's guess.
    answer = page.index('class="answer')
    assert "Ada Lovelace" in page[answer : answer + 60]
    assert answer < page.index("Corrected") < page.index("Model said: Unknown")


def test_face_regions_are_served_to_editors_and_the_asker_only(client, make_user, member):
    viewer = make_user("viewer")
    row = only_face(record(viewer, face(None, 0.3)))
    url = reverse("identities:media", args=[row.face_crop.name])
    client.force_login(viewer)
    assert client.get(url).status_code == 200
    client.force_login(make_user("viewer", "other-viewer"))
    assert client.get(url).status_code == 404
    client.force_login(member)
    assert client.get(url).status_code == 200


def test_the_next_address_must_be_on_this_site(member_client, member):
    row = only_face(record(member, face(None, 0.3)))
    response = member_client.post(
        review_url(row), {"decision": REJECT, "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("identities:review")
