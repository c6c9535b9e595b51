"""What the result page of an identification shows: faces in reading order, each with the
name it goes by now (a reviewer's answer before the model's guess), and the faces found
but too small to identify. Pure functions over a Prediction's stored results."""

from dataclasses import dataclass, field

from training.services import reading_order

# The naming levels an identification can be made at (services.STRICTNESS_CHOICES), as the
# result page explains them.
NAMING_LEVELS = {
    "strict": ("Strict", "names only faces it is sure of"),
    "normal": ("Normal", "the default"),
    "lenient": ("Lenient", "names more faces, with more mistakes"),
}


def box_style(box, width, height):
    """A face box as CSS percentages of the photo, to draw it over a scaled image."""
    x, y, w, h = box
    return {
        "left": round(100 * x / width, 2),
        "top": round(100 * y / height, 2),
        "width": round(100 * w / width, 2),
        "height": round(100 * h / height, 2),
    }


@dataclass
class FaceCard:
    """One face as the page shows it; number counts in reading order from 1."""

    number: int
    box: list
    style: dict
    model_name: str | None = None  # what the model said; None: unknown
    confidence: float = 0.0
    candidates: list = field(default_factory=list)
    row: object = None  # the PredictionFace, with the review
    too_small: bool = False

    @property
    def reviewed(self):
        return self.row is not None and not self.row.is_pending

    @property
    def rejected(self):
        return self.reviewed and self.row.review == self.row.Review.REJECTED

    @property
    def name(self):
        """The name the face goes by now: a reviewer's answer first, else the model's."""
        if self.reviewed:
            answer = self.row.answer
            return answer.name if answer else None
        return self.model_name

    @property
    def corrected(self):
        return self.reviewed and self.row.review != self.row.Review.CONFIRMED


def face_cards(prediction, rows):
    """(faces, too_small): FaceCards of the identified faces in reading order, then of the
    faces too small to identify, numbered on from them. rows maps face index to its
    PredictionFace."""
    if not prediction.width:
        return [], []
    faces = [(i, f) for i, f in enumerate(prediction.faces) if f.get("box")]
    order = reading_order([face["box"] for _, face in faces])
    size = (prediction.width, prediction.height)
    cards = [_card(n, faces[i], rows, size) for n, i in enumerate(order, start=1)]
    small = [list(box) for box in prediction.too_small or []]
    small = [small[i] for i in reading_order(small)]
    tiny = [
        FaceCard(number=n, box=box, style=box_style(box, *size), too_small=True)
        for n, box in enumerate(small, start=len(cards) + 1)
    ]
    return cards, tiny


def _card(number, indexed_face, rows, size):
    index, face = indexed_face
    return FaceCard(
        number=number,
        box=face["box"],
        style=box_style(face["box"], *size),
        model_name=face.get("identity"),
        confidence=face.get("confidence") or 0.0,
        candidates=face.get("top_k", []),
        row=rows.get(index),
    )
