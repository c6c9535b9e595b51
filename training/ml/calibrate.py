"""Calibration: the temperature of the softmax and the "unknown" thresholds of a model.

A classifier trained on N people always names one of them. To answer "unknown" for
anyone else, each face gets a score and faces scoring under a threshold are not named.
Three scores are offered (TrainConfig.unknown_score):

- "margin" (the face network's): the cosine of the face's embedding to the mean direction
  of the named person's photos, less MARGIN_WEIGHT times its mean cosine to the
  MARGIN_COHORT most similar photos of other people (the cohort: every enrolled photo, and
  the faces the team marked "not anyone we know"). A stranger tends to be moderately
  close to several people; a known face is close to one. On lfw_many (3 photos enrolled
  per person, 100 strangers, seeds 0-9), at the threshold accepting 95% of known faces,
  it named 1.45% of the strangers; 1.75% with the 3 nearest other people's means as
  the cohort, 2.4% with the plain centroid cosine (10 photos: 1.45%, 5: 1.57%, 20: 1.73%;
  weight 0.5 against 0.6-0.7). Faces marked "not anyone we know" count apart: when the
  face's mean cosine to the STRANGER_COHORT most similar of them is higher, that is what
  is subtracted. A stranger who comes back is close to his own marked photos. On lfw_many
  (seeds 0-9; half of 50 strangers' photos marked, 50 other strangers never seen) the
  returning strangers were named 0.0% of the time instead of 1.75%, the new ones 1.83%
  instead of 2.05%, with as many known faces accepted; as 10 more photos of the cohort they
  were named 0.37% and 1.95%, as the single nearest marked face 0.0% and 2.43%.
- "centroid": the cosine similarity of the face's embedding (the fc layer's input) to
  the mean embedding of the training photos of the person the classifier names. A
  stranger may still get a confident softmax, but rarely looks like that person's photos.
- "softmax": the largest class probability after temperature scaling.

No photo of an unknown person exists when a model is trained, so thresholds are chosen
from the known people's validation photos alone: each operating point accepts a given
share of them, and everything scoring lower (most strangers, one hopes) is "unknown".

Every function here is pure: tensors in, tensors or plain values out.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Share of the known people's validation faces each operating point accepts. "normal" is
# the default; "strict" names fewer people wrongly and refuses more known ones.
OPERATING_POINTS = {"strict": 0.90, "normal": 0.95, "lenient": 0.98}
MARGIN_WEIGHT = 0.5
MARGIN_COHORT = 10
# Models calibrated before the photo cohort compare faces with the 3 nearest other
# people's mean photos instead.
CENTROID_COHORT = 3
STRANGER = -1  # the cohort label of a face marked "not anyone we know"
STRANGER_COHORT = 3
DEFAULT_STRICTNESS = "normal"
# Temperatures outside this range only come from degenerate validation sets.
_TEMPERATURE_RANGE = (0.05, 20.0)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, steps: int = 100) -> float:
    """The temperature T minimising the cross-entropy of softmax(logits / T) on labels.

    logits: N x C, labels: N class indices. Returns 1.0 for an empty set. A T above 1
    softens an over-confident model's probabilities, below 1 sharpens them; the class
    ranking of each face never changes. Optimises log T, so T stays positive.
    """
    if len(labels) == 0:
        return 1.0
    # Clones: outputs made under inference_mode cannot take part in autograd.
    logits, labels = logits.detach().float().clone(), labels.detach().clone()
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    temperature = float(log_t.detach().exp())
    if not math.isfinite(temperature):
        return 1.0
    return min(max(temperature, _TEMPERATURE_RANGE[0]), _TEMPERATURE_RANGE[1])


def embedding_centre(embeddings: torch.Tensor) -> torch.Tensor:
    """The mean of the training embeddings (D values), subtracted before any cosine.

    The embeddings come after a ReLU, so they all lie in the positive orthant and every
    pair has a cosine close to 1; measured from their common centre, faces of different
    people point in different directions.
    """
    return embeddings.detach().float().mean(dim=0)


def class_centroids(
    embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int, centre=None
) -> torch.Tensor:
    """The unit-length mean direction of each class's embeddings: C x D.

    embeddings: N x D from the training photos, labels: N class indices; centre (D
    values, see embedding_centre) is subtracted first when given. A class with no
    embedding gets a zero row, which is similar to nothing (cosine 0).
    """
    directions = _directions(embeddings, centre)
    sums = torch.zeros(num_classes, directions.shape[1]).index_add_(0, labels, directions)
    return F.normalize(sums, dim=1)


def unknown_scores(
    logits: torch.Tensor,
    embeddings: torch.Tensor | None,
    method: str,
    temperature: float = 1.0,
    centroids: torch.Tensor | None = None,
    centre: torch.Tensor | None = None,
    cohort: tuple | None = None,
) -> torch.Tensor:
    """How much each face looks like the person the model names for it: N floats.

    "softmax": the top probability of softmax(logits / temperature), in (0, 1].
    "centroid": cosine similarity, in [-1, 1], of each embedding (less centre, when given)
    to the centroid of the class with the largest logit (needs embeddings and centroids,
    made with the same centre). "margin": see margin_scores (cohort: its (photos, labels)
    or None). Higher means "known".
    """
    logits = logits.detach().float()
    if method == "margin":
        if embeddings is None or centroids is None:
            raise ValueError("the margin score needs embeddings and class centroids")
        return margin_scores(embeddings, centroids, logits.argmax(dim=1), cohort)
    if method == "softmax":
        return torch.softmax(logits / temperature, dim=1).amax(dim=1)
    if method == "centroid":
        if embeddings is None or centroids is None:
            raise ValueError("the centroid score needs embeddings and class centroids")
        named = centroids[logits.argmax(dim=1)]
        return (_directions(embeddings, centre) * named).sum(dim=1)
    raise ValueError(f"unknown score method {method!r}; known: margin, centroid, softmax")


def margin_scores(embeddings, centroids, named, cohort=None) -> torch.Tensor:
    """cos(face, named person's centroid) - MARGIN_WEIGHT * the mean cosine of the face to
    the MARGIN_COHORT most similar photos of the cohort that are other people's, or to the
    STRANGER_COHORT most similar faces marked "not anyone we know" when that is higher.

    embeddings N x D (any length), centroids C x D unit rows, named N class indices;
    cohort (photos M x D unit rows, labels M class indices or STRANGER), or None for a
    model calibrated without one: the CENTROID_COHORT nearest other centroids instead.
    """
    directions = F.normalize(embeddings.detach().float(), dim=1)
    similarities = directions @ centroids.float().T
    own = similarities[torch.arange(len(named)), named]
    if cohort is None:
        others = similarities.clone()
        others[torch.arange(len(named)), named] = -float("inf")
        return own - MARGIN_WEIGHT * _mean_of_top(others, CENTROID_COHORT)
    return own - MARGIN_WEIGHT * _cohort_similarity(directions, named, *cohort)


def _cohort_similarity(directions, named, photos, labels):
    """The larger of each direction's mean cosine to its MARGIN_COHORT most similar cohort
    photos of people other than its named class, and to its STRANGER_COHORT most similar
    strangers' faces."""
    similarities = directions @ photos.float().T
    labels = labels.to(named.device)
    stranger = labels == STRANGER
    people = similarities[:, ~stranger].masked_fill(
        labels[~stranger][None, :] == named[:, None], -float("inf")
    )
    crowd = _mean_of_top(people, MARGIN_COHORT)
    if not stranger.any():
        return crowd
    return torch.maximum(crowd, _mean_of_top(similarities[:, stranger], STRANGER_COHORT))


def _mean_of_top(similarities, count):
    """Mean of each row's `count` largest finite values (fewer where it has fewer; 0 with
    none)."""
    count = min(count, similarities.shape[1])
    if count == 0:
        return torch.zeros(len(similarities))
    top = similarities.topk(count, dim=1).values
    finite = torch.isfinite(top)
    total = torch.where(finite, top, torch.zeros_like(top)).sum(dim=1)
    return total / finite.sum(dim=1).clamp(min=1)


def calibrate_margin(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    val_logits=None,
    val_labels=None,
    strangers=None,
) -> dict:
    """The "margin" calibration from every enrolled photo's embedding (train and val), and
    the embeddings of faces marked "not anyone we know" (strangers: M x D, or None).

    Centroids (what identification compares faces with) come from all the photos. The
    thresholds come from leave-one-out: each photo is scored as a new face against the
    centroids with itself left out of its own person's, as if it had not been enrolled
    (it is its own person's photo, so never in its own cohort), and each operating point
    accepts its share of those scores (a photo the centroids
    would give to someone else counts as refused). Left-out centroids have one photo
    fewer than the real ones and so fit a new face less well; the own-person cosine is
    scaled up by how much a centroid of n rather than n - 1 photos is expected to fit
    better (isotropic spread around the person's mean, with the mean cosine between two
    photos of one person measured on these photos). Without that, with 3 photos a person,
    a point meant to accept 95% of known faces accepted 97-98% and named 2-3x the strangers.
    A person with one photo has no held-out score. The cohort (every photo's direction and
    the strangers', with their labels) is kept for identification's scores. Pure function.
    """
    directions = F.normalize(embeddings.detach().float(), dim=1)
    labels = labels.detach()
    sums = torch.zeros(num_classes, directions.shape[1]).index_add_(0, labels, directions)
    counts = torch.bincount(labels, minlength=num_classes).float()
    centroids = F.normalize(sums, dim=1)
    strangers = torch.empty(0, directions.shape[1]) if strangers is None else strangers
    cohort = (
        torch.cat([directions, F.normalize(strangers.detach().float(), dim=1)]),
        torch.cat([labels, torch.full((len(strangers),), STRANGER, dtype=labels.dtype)]),
    )
    known = _left_out_scores(directions, labels, sums, counts, centroids, cohort)
    result = {
        "method": "margin",
        "temperature": 1.0,
        "thresholds": choose_thresholds(known) if len(known) else None,
        "known_accept": dict(OPERATING_POINTS) if len(known) else None,
        "centroids": centroids,
        "margin_weight": MARGIN_WEIGHT,
        "margin_cohort": MARGIN_COHORT,
        # Half precision: 256 bytes a photo in the checkpoint; scores move by ~1e-4.
        "cohort": cohort[0].half(),
        "cohort_labels": cohort[1],
        "stranger_faces": len(strangers),
        "calibration_images": len(known),
        "note": "thresholds accept the given shares of the enrolled photos, each scored "
        "as if it had been left out",
    }
    if val_logits is not None and len(val_labels):
        result["temperature"] = fit_temperature(val_logits, val_labels)
        result["val_images"] = len(val_labels)
        result["val_accuracy"] = float((val_logits.argmax(dim=1) == val_labels).float().mean())
    if len(known) < 20:
        result["note"] += f"; only {len(known)} such photos, so the shares are rough"
    return result


def _left_out_scores(directions, labels, sums, counts, centroids, cohort):
    own_count = counts[labels]
    usable = own_count >= 2
    if not usable.any():
        return torch.empty(0)
    directions, labels, own_count = directions[usable], labels[usable], own_count[usable]
    left_out = F.normalize(sums[labels] - directions, dim=1)
    similarities = directions @ centroids.T
    rows = torch.arange(len(labels))
    similarities[rows, labels] = (directions * left_out).sum(dim=1)
    named = similarities.argmax(dim=1)
    own = similarities[rows, labels] * _fit_gain(directions, labels, own_count)
    scores = own - MARGIN_WEIGHT * _cohort_similarity(directions, labels, *cohort)
    # A photo the centroids would give to someone else is a known face refused.
    return torch.where(named == labels, scores, torch.full_like(scores, -float("inf")))


def _fit_gain(directions, labels, own_count):
    # With photos spread evenly around a person's mean m (|m|^2 = c, the mean cosine of
    # two photos of one person), the mean of k photos has length sqrt(c + (1 - c) / k), and
    # a new photo's cosine to its direction is about c / that length.
    same = labels[:, None] == labels[None, :]
    off_diagonal = same & ~torch.eye(len(labels), dtype=torch.bool)
    if not off_diagonal.any():
        return torch.ones_like(own_count)
    c = float((directions @ directions.T)[off_diagonal].mean().clamp(0.0, 1.0))

    def length(k):
        return torch.sqrt(c + (1 - c) / k)

    return length(own_count - 1) / length(own_count)


def choose_thresholds(known_scores: torch.Tensor, operating_points=None) -> dict | None:
    """Thresholds accepting at least the given share of known faces: {point: threshold}.

    known_scores: the scores of the known people's validation faces. For a share a of n
    faces the threshold is the k-th lowest score with k = floor((1 - a) * n), so at least
    a share a of those faces scores at or above it, but never below the lowest finite
    score. None when there is no finite score.
    A higher share gives a lower (more lenient) threshold.
    """
    operating_points = OPERATING_POINTS if operating_points is None else operating_points
    ordered = torch.sort(known_scores.detach().float()).values
    finite = ordered[torch.isfinite(ordered)]
    if len(finite) == 0:
        return None
    n = len(ordered)
    # A face scored -inf (given to someone else) is refused at any threshold: the lowest
    # finite score is the most lenient threshold that means anything (and JSON stores it).
    return {
        point: max(
            float(ordered[min(int(math.floor((1 - share) * n + 1e-9)), n - 1)]), float(finite[0])
        )
        for point, share in operating_points.items()
    }


def calibrate(
    method: str,
    num_classes: int,
    val_logits: torch.Tensor,
    val_labels: torch.Tensor,
    val_embeddings: torch.Tensor,
    train_embeddings: torch.Tensor,
    train_labels: torch.Tensor,
) -> dict:
    """The calibration stored with a model, from its outputs on train and val photos.

    Returns {"method", "temperature", "thresholds": {"strict", "normal", "lenient"},
    "known_accept": the share of known faces each point accepts by design,
    "centroids": C x D float tensor, "embedding_centre": D float tensor, "val_images": int,
    "val_accuracy": float, "note"}.
    Centroids come from the training photos (seen without augmentation); temperature and
    thresholds from the validation photos, which the model did not learn from.
    Falls back to no_calibration when there are no validation photos.
    """
    if len(val_labels) == 0:
        return no_calibration(method, train_embeddings, train_labels, num_classes)
    centre = embedding_centre(train_embeddings)
    centroids = class_centroids(train_embeddings, train_labels, num_classes, centre)
    temperature = fit_temperature(val_logits, val_labels)
    scores = unknown_scores(val_logits, val_embeddings, method, temperature, centroids, centre)
    correct = (val_logits.argmax(dim=1) == val_labels).float().mean()
    note = "thresholds accept the given shares of the known people's validation photos"
    if len(val_labels) < 20:
        note += f"; only {len(val_labels)} validation photos, so the shares are rough"
    return {
        "method": method,
        "temperature": temperature,
        "thresholds": choose_thresholds(scores),
        "known_accept": dict(OPERATING_POINTS),
        "centroids": centroids,
        "embedding_centre": centre,
        "val_images": len(val_labels),
        "val_accuracy": float(correct),
        "note": note,
    }


def no_calibration(method, train_embeddings=None, train_labels=None, num_classes=None) -> dict:
    """The calibration of a model trained without validation photos.

    Nothing tells how a known face scores, so there are no thresholds: every face is given
    its most probable name unless an administrator sets a threshold by hand. Centroids
    are kept when training embeddings are given, so such a threshold can still be used.
    """
    centroids = centre = None
    if train_embeddings is not None and len(train_embeddings) and num_classes:
        centre = embedding_centre(train_embeddings)
        centroids = class_centroids(train_embeddings, train_labels, num_classes, centre)
    return {
        "method": method,
        "temperature": 1.0,
        "thresholds": None,
        "known_accept": None,
        "centroids": centroids,
        "embedding_centre": centre,
        "val_images": 0,
        "val_accuracy": None,
        "note": "no validation photos: no unknown threshold could be calibrated; every face "
        "is named unless a threshold is set by hand",
    }


def _directions(embeddings, centre):
    embeddings = embeddings.detach().float()
    if centre is not None:
        embeddings = embeddings - centre
    return F.normalize(embeddings, dim=1)


def calibration_summary(calibration: dict) -> dict:
    """The calibration without its tensors: plain JSON-able values for a database row."""
    return {key: value for key, value in calibration.items() if not isinstance(value, torch.Tensor)}
