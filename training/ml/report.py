"""Per-identity precision, recall and F1, the confusion matrix and the worst mix-ups."""

from __future__ import annotations


def classification_report(truth: list[int], predicted: list[int], n_classes: int) -> dict:
    """Summarise predictions against the truth. Pure function on class indices.

    Returns {"accuracy", "per_class": [{"precision", "recall", "f1", "support"}] in class
    order, "confusion": rows = true class, columns = predicted class, "most_confused":
    [{"true", "predicted", "count"}] off-diagonal cells, most frequent first}.
    """
    confusion = [[0] * n_classes for _ in range(n_classes)]
    for true, guess in zip(truth, predicted, strict=True):
        confusion[true][guess] += 1
    per_class = [_class_scores(confusion, index) for index in range(n_classes)]
    correct = sum(confusion[i][i] for i in range(n_classes))
    mix_ups = [
        {"true": true, "predicted": guess, "count": confusion[true][guess]}
        for true in range(n_classes)
        for guess in range(n_classes)
        if true != guess and confusion[true][guess]
    ]
    mix_ups.sort(key=lambda cell: (-cell["count"], cell["true"], cell["predicted"]))
    return {
        "accuracy": correct / len(truth) if truth else None,
        "per_class": per_class,
        "confusion": confusion,
        "most_confused": mix_ups,
    }


def _class_scores(confusion, index):
    hits = confusion[index][index]
    support = sum(confusion[index])
    claimed = sum(row[index] for row in confusion)
    precision = hits / claimed if claimed else 0.0
    recall = hits / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "support": support,
    }
