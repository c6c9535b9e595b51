"""What a new model gets right and wrong on its validation faces, for the job page."""

from PIL import Image


def evaluate_checkpoint(checkpoint_path, manifest, data_dir, classes):
    """Run the stored model over the validation crops and summarise.

    classes is the model's class list ([{id, name, folder}] in output order). Returns plain
    JSON-able metrics: per-identity precision/recall/F1, the confusion matrix (identity ids in
    `classes` order), the most confused pairs with example image ids, every mistake, and
    the share of validation faces accepted (not called unknown) at the normal threshold.
    Reads the files under data_dir; writes nothing.
    """
    from .ml.predictor import Predictor
    from .ml.report import classification_report

    val = [entry for entry in manifest.files if entry["split"] == "val"]
    if not val:
        return {}
    index_of = {c["id"]: i for i, c in enumerate(classes)}
    predictor = Predictor.from_checkpoint(checkpoint_path)
    images = [_load(data_dir / entry["path"]) for entry in val]
    results = predictor.identify(images, top_k=1)
    truth = [index_of[entry["identity_id"]] for entry in val]
    guesses = [result["top_k"][0][0] for result in results]
    report = classification_report(truth, guesses, len(classes))
    mistakes = [
        {
            "image_id": entry["image_id"],
            "true_id": entry["identity_id"],
            "predicted_id": classes[guess]["id"],
            "probability": round(result["top_k"][0][1], 4),
        }
        for entry, guess, result, true in zip(val, guesses, results, truth, strict=True)
        if guess != true
    ]
    return {
        "per_identity": [
            {"id": c["id"], "name": c["name"], **scores}
            for c, scores in zip(classes, report["per_class"], strict=True)
        ],
        "confusion": report["confusion"],
        "most_confused": [
            _with_examples(cell, classes, mistakes) for cell in report["most_confused"][:5]
        ],
        "mistakes": mistakes,
        "known_accept": round(sum(r["accepted"] for r in results) / len(results), 4),
    }


def _load(path):
    with Image.open(path) as image:
        return image.convert("RGB")


def _with_examples(cell, classes, mistakes):
    true_id, predicted_id = classes[cell["true"]]["id"], classes[cell["predicted"]]["id"]
    examples = [
        m["image_id"]
        for m in mistakes
        if m["true_id"] == true_id and m["predicted_id"] == predicted_id
    ]
    return {
        "true_id": true_id,
        "predicted_id": predicted_id,
        "count": cell["count"],
        "examples": examples[:4],
    }
