"""The result of an identification: faces numbered in reading order, the cards in the same
order, a reviewer's answer before the model's guess, the naming level, faces too small."""

import re
import time

import pytest
from django.urls import reverse

from identities.models import PredictionFace
from identities.recognitions import record_identification
from identities.results import reading_order
from identities.review import NAME, REJECT, review_face
from tests.identities.recorded import face, record
from tests.images import person_image

pytestmark = pytest.mark.django_db


def test_reading_order_is_rows_top_to_bottom_then_left_to_right():
    boxes = [
        [300, 10, 50, 50],  # top row, right
        [10, 200, 50, 50],  # bottom row, left
        [10, 25, 50, 50],  # top row, left, a little lower
        [150, 0, 50, 50],  # top row, middle, highest
    ]
    assert reading_order(boxes) == [2, 3, 0, 1]


def test_a_staggered_group_photo_keeps_its_two_rows_apart():
    # Two rows of faces whose second row sits half a face lower: a row band that grew with
    # each face would swallow the second row.
    front = [[x, 100, 40, 40] for x in range(0, 400, 80)]
    back = [[x + 40, 130, 40, 40] for x in range(0, 400, 80)]
    order = reading_order(front + back)
    assert order == list(range(5)) + list(range(5, 10))


def test_reading_order_of_nothing_is_empty():
    assert reading_order([]) == []


def recorded_with_boxes(user, boxes, **kwargs):
    """A Prediction of a 128x128 photo with faces at boxes (largest-first order as given)."""
    faces = []
    for n, box in enumerate(boxes):
        faces.append(face(None, 0.3) | {"box": box, "top_k": [], "confidence": 0.3 + n / 100})
    result = {"model_version": None, "faces": faces} | kwargs.pop("extra", {})
    return record_identification(person_image(0, 1), result, user, time.perf_counter(), **kwargs)


def card_numbers(page):
    return [int(n) for n in re.findall(r'<article class="card result[^"]*" id="face-(\d+)"', page)]


def test_faces_are_numbered_in_reading_order_with_cards_in_that_order(member_client, member):
    # Stored largest first: the second face stored is the leftmost.
    prediction = recorded_with_boxes(member, [[60, 10, 40, 40], [5, 12, 30, 30], [20, 70, 40, 40]])
    page = member_client.get(prediction.get_absolute_url()).content.decode()
    boxes = re.findall(r'class="face-box[^"]*" data-face="(\d+)"[^>]*style="left: ([\d.]+)%', page)
    assert [int(n) for n, _ in boxes] == [1, 2, 3]
    lefts = [float(left) for _, left in boxes]
    assert lefts[0] < lefts[1]  # 1 is the leftmost of the top row
    assert card_numbers(page) == [1, 2, 3]
    assert 'href="#face-1"' in page


def test_a_corrected_face_shows_the_reviewers_name_then_the_models_guess(
    member_client, member, ada, grace
):
    prediction = record(member, face(ada, 0.6))
    review_face(PredictionFace.objects.get(), NAME, member, identity=grace)
    page = member_client.get(prediction.get_absolute_url()).content.decode()
    card = page[page.index('id="face-1"') :]
    assert card.index("Grace Hopper") < card.index("Model said: Ada Lovelace, 60%")
    assert "Corrected" in card and "by alice" in card
    # Never a percentage beside the reviewer's answer.
    assert not re.search(r"Grace Hopper[^<]*\d+%", card)


def test_a_face_marked_as_a_stranger_says_so_before_the_models_guess(member_client, member, ada):
    prediction = record(member, face(ada, 0.7))
    review_face(PredictionFace.objects.get(), REJECT, member)
    card = member_client.get(prediction.get_absolute_url()).content.decode()
    assert card.index("Not anyone we know") < card.index("Model said: Ada Lovelace, 70%")


def test_the_naming_level_used_is_kept_and_shown(member_client, member):
    prediction = recorded_with_boxes(member, [[10, 10, 40, 40]], strictness="strict")
    prediction.refresh_from_db()
    assert prediction.strictness == "strict"
    page = member_client.get(prediction.get_absolute_url()).content.decode()
    assert "Naming: <b>Strict</b>" in page
    assert 'id="confidence-note"' in page


def test_an_identification_from_before_the_naming_level_was_kept_says_so(member_client, member):
    prediction = recorded_with_boxes(member, [[10, 10, 40, 40]])
    page = member_client.get(prediction.get_absolute_url()).content.decode()
    assert "Naming: not recorded" in page


def test_faces_too_small_are_drawn_dashed_counted_and_numbered_after(member_client, member):
    small = {"too_small": [[100, 100, 8, 8], [2, 100, 8, 8]]}
    prediction = recorded_with_boxes(member, [[10, 10, 40, 40]], extra=small)
    page = member_client.get(prediction.get_absolute_url()).content.decode()
    assert page.count('class="face-box too-small"') == 2
    assert "2 faces too small to identify" in page
    dashed = re.findall(r'class="face-box too-small" data-face="(\d+)"[^>]*left: ([\d.]+)%', page)
    assert [int(n) for n, _ in dashed] == [2, 3]
    assert float(dashed[0][1]) < float(dashed[1][1])


def test_a_result_without_too_small_faces_mentions_none(member_client, member):
    prediction = recorded_with_boxes(member, [[10, 10, 40, 40]])
    assert (
        "too small to identify"
        not in member_client.get(prediction.get_absolute_url()).content.decode()
    )


def test_history_shows_no_percentage_beside_unknown_or_a_reviewers_name(
    client, make_user, ada, grace
):
    viewer = make_user("admin")
    client.force_login(viewer)
    record(viewer, face(None, 0.46))
    record(viewer, face(ada, 0.6))
    review_face(PredictionFace.objects.get(identity=ada), NAME, viewer, identity=grace)
    record(viewer, face(ada, 0.91))
    page = client.get(reverse("identities:history")).content.decode()
    assert "46%" not in page and "60%" not in page
    assert "91%" in page
