"""Charts drawn on the server as SVG: training curves and the confusion matrix."""

from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

COLOURS = ["#2f6fde", "#23855a", "#c2692f", "#8a4fc9"]
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44, 12, 14, 28


def line_chart(series, title, y_max=None, width=520, height=200):
    """An SVG line chart of {name: [value or None per epoch]}, epochs along x."""
    points = [v for values in series.values() for v in values if v is not None]
    epochs = max((len(values) for values in series.values()), default=0)
    if not points or epochs == 0:
        return mark_safe("")
    top = y_max if y_max is not None else max(points) * 1.1 or 1.0
    plot_w, plot_h = width - PAD_LEFT - PAD_RIGHT, height - PAD_TOP - PAD_BOTTOM

    def x(epoch):
        return PAD_LEFT + (plot_w * epoch / (epochs - 1) if epochs > 1 else plot_w / 2)

    def y(value):
        return PAD_TOP + plot_h * (1 - min(value, top) / top)

    parts = [_axes(width, height, top, epochs, x, y, percent=y_max == 1.0)]
    for values, colour in zip(series.values(), COLOURS, strict=False):
        coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values) if v is not None)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'
        )
        last = [(i, v) for i, v in enumerate(values) if v is not None][-1]
        parts.append(f'<circle cx="{x(last[0]):.1f}" cy="{y(last[1]):.1f}" r="3" fill="{colour}"/>')
    legend = "".join(
        f'<span><i style="background:{colour}"></i>{escape(name)}</span>'
        for name, colour in zip(series, COLOURS, strict=False)
    )
    svg = (
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        + "".join(parts)
        + "</svg>"
    )
    return format_html(
        '<figure class="chart"><figcaption>{} <span class="legend">{}</span></figcaption>{}'
        "</figure>",
        title,
        mark_safe(legend),
        mark_safe(svg),
    )


def _axes(width, height, top, epochs, x, y, percent):
    lines = []
    for fraction in (0, 0.5, 1):
        value = top * fraction
        label = f"{value:.0%}" if percent else f"{value:.2g}"
        lines.append(
            f'<line x1="{PAD_LEFT}" x2="{width - PAD_RIGHT}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}" class="grid"/>'
            f'<text x="{PAD_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{label}</text>'
        )
    for epoch in sorted({0, epochs - 1, (epochs - 1) // 2}):
        lines.append(
            f'<text x="{x(epoch):.1f}" y="{height - 8}" text-anchor="middle">{epoch + 1}</text>'
        )
    return "".join(lines)


def curves(history):
    """The two charts of a job's page: loss, and train/validation accuracy."""
    loss = line_chart({"loss": [row["loss"] for row in history]}, "Loss")
    accuracy = line_chart(
        {
            "train accuracy": [row["train_accuracy"] for row in history],
            "validation accuracy": [row.get("val_accuracy") for row in history],
        },
        "Accuracy",
        y_max=1.0,
    )
    return loss + accuracy


def confusion_heatmap(matrix, labels, cell=26):
    """An SVG heatmap: rows are the true identity, columns what the model said."""
    n = len(labels)
    if n == 0:
        return mark_safe("")
    label_w = 130  # room for the row names on the left and the slanted column names on top
    width, height = label_w + cell * n + 70, label_w + cell * n + 4
    peak = max(max(row) for row in matrix) or 1
    parts = []
    for i, row in enumerate(matrix):
        parts.append(
            f'<text x="{label_w - 6}" y="{label_w + cell * i + cell * 0.65:.1f}" '
            f'text-anchor="end">{escape(_short(labels[i]))}</text>'
        )
        for j, count in enumerate(row):
            shade = count / peak
            colour = f"rgba(47,111,222,{0.08 + 0.92 * shade:.2f})" if count else "#f3f4f6"
            cx, cy = label_w + cell * j, label_w + cell * i
            title = f"{escape(labels[i])} taken for {escape(labels[j])}: {count}"
            parts.append(
                f'<rect x="{cx}" y="{cy}" width="{cell - 2}" height="{cell - 2}" '
                f'fill="{colour}"><title>{title}</title></rect>'
            )
            if count:
                ink = "#fff" if shade > 0.5 else "#1d2430"
                parts.append(
                    f'<text x="{cx + cell / 2 - 1:.1f}" y="{cy + cell * 0.65:.1f}" '
                    f'text-anchor="middle" fill="{ink}">{count}</text>'
                )
    for j, label in enumerate(labels):
        x = label_w + cell * j + cell * 0.6
        parts.append(
            f'<text transform="translate({x:.1f},{label_w - 6}) rotate(-60)">'
            f"{escape(_short(label))}</text>"
        )
    return mark_safe(
        f'<svg class="heatmap" viewBox="0 0 {width} {height}" width="{width}" role="img" '
        f'aria-label="Confusion matrix">{"".join(parts)}</svg>'
    )


def _short(label, limit=20):
    return label if len(label) <= limit else label[: limit - 1] + "…"
