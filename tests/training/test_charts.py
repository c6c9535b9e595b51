from training.charts import confusion_heatmap, curves, line_chart


def test_curves_draw_one_line_per_series_and_escape_names():
    history = [
        {"loss": 1.2, "train_accuracy": 0.4, "val_accuracy": 0.3},
        {"loss": 0.8, "train_accuracy": 0.7, "val_accuracy": None},
        {"loss": 0.5, "train_accuracy": 0.9, "val_accuracy": 0.6},
    ]
    svg = str(curves(history))
    assert svg.count("<polyline") == 3
    assert "100%" in svg and "Loss" in svg
    assert "&lt;b&gt;" in str(line_chart({"<b>": [1.0, 2.0]}, "t"))


def test_nothing_is_drawn_before_the_first_epoch():
    assert str(curves([])) == ""


def test_the_heatmap_has_a_cell_per_pair_and_counts_in_the_busy_ones():
    svg = str(confusion_heatmap([[3, 1], [0, 2]], ["Ada <script>", "Grace"]))
    assert svg.count("<rect") == 4
    assert ">3</text>" in svg and ">1</text>" in svg
    assert "<script>" not in svg
