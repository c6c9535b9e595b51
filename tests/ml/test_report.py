from training.ml.report import classification_report


def test_it_counts_precision_recall_and_the_confusion_matrix():
    report = classification_report([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], n_classes=3)
    assert report["accuracy"] == 0.6
    assert report["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert report["per_class"][1] == {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "support": 2}
    assert report["per_class"][2] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_the_most_confused_pairs_come_first():
    report = classification_report([0, 0, 0, 1, 2], [1, 1, 2, 0, 2], n_classes=3)
    assert report["most_confused"][0] == {"true": 0, "predicted": 1, "count": 2}
    assert len(report["most_confused"]) == 3


def test_no_predictions_give_no_accuracy():
    assert classification_report([], [], n_classes=2)["accuracy"] is None
