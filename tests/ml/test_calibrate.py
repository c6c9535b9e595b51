import math

import pytest
import torch
import torch.nn.functional as F

from training.ml.calibrate import (
    MARGIN_WEIGHT,
    OPERATING_POINTS,
    STRANGER,
    calibrate,
    calibrate_margin,
    calibration_summary,
    choose_thresholds,
    class_centroids,
    fit_temperature,
    margin_scores,
    unknown_scores,
)


def overconfident_logits(n=400, classes=4, seed=0):
    """Logits that are right 70% of the time but claim near certainty every time."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=generator)
    predicted = labels.clone()
    wrong = torch.rand(n, generator=generator) < 0.3
    predicted[wrong] = (labels[wrong] + 1) % classes
    logits = torch.randn(n, classes, generator=generator)
    logits[torch.arange(n), predicted] += 12.0
    return logits, labels


def test_fitting_a_temperature_lowers_the_loss_of_an_overconfident_model():
    logits, labels = overconfident_logits()

    temperature = fit_temperature(logits, labels)

    assert temperature > 1.5  # softens
    assert F.cross_entropy(logits / temperature, labels) < 0.5 * F.cross_entropy(logits, labels)


def test_fitting_a_temperature_keeps_every_faces_top_class():
    logits, labels = overconfident_logits()

    temperature = fit_temperature(logits, labels)

    assert torch.equal((logits / temperature).argmax(1), logits.argmax(1))


def test_fitting_a_temperature_to_nothing_gives_one():
    assert fit_temperature(torch.empty(0, 3), torch.empty(0, dtype=torch.int64)) == 1.0


def test_thresholds_get_stricter_from_lenient_to_strict():
    scores = torch.linspace(0, 1, 50)

    thresholds = choose_thresholds(scores)

    assert thresholds["strict"] > thresholds["normal"] > thresholds["lenient"]
    for point, share in OPERATING_POINTS.items():
        assert (scores >= thresholds[point]).float().mean() >= share


def test_there_are_no_thresholds_without_known_scores():
    assert choose_thresholds(torch.empty(0)) is None
    assert choose_thresholds(torch.full((3,), -float("inf"))) is None


def test_faces_given_to_someone_else_never_make_a_threshold_of_minus_infinity():
    # 30 photos, one of them closer to another person's mean (score -inf): 2% of 30 is 0.6,
    # so the lenient point would take that -inf; a model row cannot store it in JSON.
    scores = torch.cat([torch.tensor([-float("inf")]), torch.linspace(0.2, 0.8, 29)])

    thresholds = choose_thresholds(scores)

    assert thresholds["lenient"] == pytest.approx(0.2)
    assert all(math.isfinite(value) for value in thresholds.values())


def test_the_centroid_score_is_high_near_the_named_class_and_low_far_from_it():
    centroids = class_centroids(torch.eye(3) * 5, torch.tensor([0, 1, 2]), 3)
    logits = torch.tensor([[9.0, 0.0, 0.0], [9.0, 0.0, 0.0]])
    embeddings = torch.tensor([[2.0, 0.1, 0.0], [0.0, 0.0, 3.0]])

    scores = unknown_scores(logits, embeddings, "centroid", centroids=centroids)

    assert scores[0] > 0.99 and scores[1] < 0.01


def test_the_softmax_score_is_the_top_tempered_probability():
    logits = torch.tensor([[2.0, 0.0]])

    scores = unknown_scores(logits, None, "softmax", temperature=2.0)

    assert scores.item() == pytest.approx(torch.softmax(logits / 2, 1).max().item())


def test_calibration_holds_thresholds_centroids_and_the_temperature():
    logits, labels = overconfident_logits(n=60, classes=3)
    embeddings = F.one_hot(labels, 3).float() + 0.1

    calibration = calibrate("centroid", 3, logits, labels, embeddings, embeddings, labels)

    assert calibration["method"] == "centroid"
    assert set(calibration["thresholds"]) == set(OPERATING_POINTS)
    assert calibration["centroids"].shape == (3, 3)
    assert calibration["temperature"] > 1
    assert "centroids" not in calibration_summary(calibration)


def test_without_validation_photos_calibration_says_it_has_no_thresholds():
    embeddings, labels = torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])

    calibration = calibrate(
        "centroid",
        3,
        torch.empty(0, 3),
        torch.empty(0, dtype=torch.int64),
        None,
        embeddings,
        labels,
    )

    assert calibration["thresholds"] is None
    assert "no validation photos" in calibration["note"]
    assert calibration["centroids"].shape == (3, 4)  # a threshold set by hand still works


def clustered_embeddings(people=4, photos=5, spread=0.25, seed=0):
    """Photos of each person spread around a person's direction in 16 dimensions."""
    generator = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(people, 16, generator=generator), dim=1)
    labels = torch.arange(people).repeat_interleave(photos)
    noise = torch.randn(len(labels), 16, generator=generator) * spread
    return centres[labels] + noise, labels, centres


def test_the_margin_score_prefers_a_face_near_one_person_to_one_between_two():
    centroids = torch.eye(3)
    near_one = torch.tensor([[0.9, 0.1, 0.0]])
    between = torch.tensor([[0.7, 0.7, 0.0]])

    named = torch.tensor([0])

    assert margin_scores(near_one, centroids, named) > margin_scores(between, centroids, named)


def test_margin_calibration_takes_centroids_from_every_photo():
    embeddings, labels, _ = clustered_embeddings()

    calibration = calibrate_margin(embeddings, labels, 4)

    expected = class_centroids(embeddings, labels, 4)
    assert torch.allclose(calibration["centroids"], expected, atol=1e-6)
    assert calibration["method"] == "margin"
    assert calibration["calibration_images"] == len(labels)


def test_margin_thresholds_accept_their_share_of_left_out_photos():
    embeddings, labels, _ = clustered_embeddings(people=10, photos=10)

    thresholds = calibrate_margin(embeddings, labels, 10)["thresholds"]

    assert thresholds["strict"] >= thresholds["normal"] >= thresholds["lenient"]
    # Scored as new faces against the full centroids, at least the normal share passes.
    named = (F.normalize(embeddings, dim=1) @ class_centroids(embeddings, labels, 10).T).argmax(1)
    scores = margin_scores(embeddings, class_centroids(embeddings, labels, 10), named)
    assert (scores >= thresholds["normal"]).float().mean() >= OPERATING_POINTS["normal"]


def test_strangers_score_under_the_normal_threshold():
    embeddings, labels, centres = clustered_embeddings(people=10, photos=6, spread=0.2)
    strangers, _, _ = clustered_embeddings(people=10, photos=6, spread=0.2, seed=1)
    calibration = calibrate_margin(embeddings, labels, 10)
    centroids = calibration["centroids"]
    named = (F.normalize(strangers, dim=1) @ centroids.T).argmax(1)

    named_wrongly = (
        margin_scores(strangers, centroids, named) >= calibration["thresholds"]["normal"]
    )

    assert named_wrongly.float().mean() < 0.2


def test_a_person_with_one_photo_gives_no_left_out_score():
    embeddings, labels, _ = clustered_embeddings(people=2, photos=1)

    calibration = calibrate_margin(embeddings, labels, 2)

    assert calibration["thresholds"] is None and calibration["calibration_images"] == 0


def test_a_photo_the_others_would_give_to_someone_else_counts_as_refused():
    # Person 1's second photo lies on person 0's direction.
    embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.05], [0.0, 1.0], [0.99, 0.02]])
    labels = torch.tensor([0, 0, 1, 1])

    calibration = calibrate_margin(embeddings, labels, 2)

    # The refused photo scores -inf, the lowest, so the lenient point (accept 98%) sits at
    # the lowest real score: as lenient as a threshold can be, and a number JSON can store.
    assert calibration["calibration_images"] == 4
    thresholds = calibration["thresholds"]
    assert math.isfinite(thresholds["lenient"])
    assert thresholds["lenient"] <= thresholds["normal"] <= thresholds["strict"]


def test_a_stranger_who_comes_back_is_refused_once_marked_not_anyone_we_know():
    embeddings, labels, _ = clustered_embeddings(people=10, photos=6, spread=0.2)
    # Photos of 10 strangers: three of each were marked "not anyone we know".
    strangers, _, _ = clustered_embeddings(people=10, photos=6, spread=0.2, seed=1)
    first_three = torch.arange(60) % 6 < 3
    marked, again = strangers[first_three], strangers[~first_three]

    before = calibrate_margin(embeddings, labels, 10)
    after = calibrate_margin(embeddings, labels, 10, strangers=marked)

    def scores(calibration, faces):
        centroids = calibration["centroids"]
        chosen = (F.normalize(faces, dim=1) @ centroids.T).argmax(1)
        return margin_scores(
            faces, centroids, chosen, (calibration["cohort"], calibration["cohort_labels"])
        )

    def named(calibration, faces):
        return (scores(calibration, faces) >= calibration["thresholds"]["normal"]).float().mean()

    assert after["stranger_faces"] == 30 and len(after["cohort"]) == len(embeddings) + 30
    assert (after["cohort_labels"] == STRANGER).sum() == 30
    assert named(after, again) <= named(before, again) / 2
    # Their photos score far lower; the thresholds (calibrated on the known people's photos
    # with the strangers in the cohort) move far less, so known faces are accepted as often.
    fall = (scores(before, again) - scores(after, again)).mean()
    assert fall > 3 * (before["thresholds"]["normal"] - after["thresholds"]["normal"]) > 0


def test_the_margin_score_leaves_the_named_persons_own_photos_out_of_its_cohort():
    centroids = torch.eye(3)
    face = torch.tensor([[0.9, 0.3, 0.1]])
    photos = F.normalize(torch.tensor([[1.0, 0.1, 0.0], [0.2, 1.0, 0.0], [0.9, 0.3, 0.1]]))
    named = torch.tensor([0])

    # Only photo 1 (person 1) counts for person 0; a stranger's photo like the face lowers
    # the score, one unlike it does not.
    alone = margin_scores(face, centroids, named, (photos[:2], torch.tensor([0, 1])))
    expected = 0.9 / face.norm() - MARGIN_WEIGHT * float(F.normalize(face) @ photos[1])
    assert alone == pytest.approx(expected.item(), abs=1e-5)
    like = margin_scores(face, centroids, named, (photos, torch.tensor([0, 1, STRANGER])))
    assert like < alone


def test_a_model_calibrated_before_the_cohort_compares_with_the_nearest_centroids():
    centroids = torch.eye(4)
    face = torch.tensor([[0.9, 0.3, 0.2, 0.1]])

    score = margin_scores(face, centroids, torch.tensor([0]))

    direction = F.normalize(face)[0]
    expected = direction[0] - MARGIN_WEIGHT * direction[1:].mean()
    assert score == pytest.approx(expected.item(), abs=1e-5)
