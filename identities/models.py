import unicodedata

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.text import slugify

from accounts.roles import ADMIN, VIEWER, has_role

# Control, format (zero-width, bidi overrides), private-use, unassigned and surrogate
# characters, and the line/paragraph separators.
INVISIBLE_CATEGORIES = {"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"}


class IdentityQuerySet(models.QuerySet):
    def with_photo_counts(self):
        """Annotate photo_count, usable_count, unused_count (photos training leaves out)
        and cover_thumbnail (the newest photo's thumbnail name), in the one query that
        lists people."""
        newest = FaceImage.objects.filter(identity=models.OuterRef("pk")).order_by(
            "-uploaded_at", "-id"
        )
        return self.annotate(
            photo_count=models.Count("images", distinct=True),
            usable_count=models.Count(
                "images", filter=models.Q(images__status=FaceImage.Status.OK), distinct=True
            ),
            unused_count=models.Count(
                "images", filter=~models.Q(images__status=FaceImage.Status.OK), distinct=True
            ),
            cover_thumbnail=models.Subquery(newest.values("thumbnail")[:1]),
        )


class Identity(models.Model):
    """A person the model can learn to recognise."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=220, unique=True)
    notes = models.TextField(blank=True)
    is_active = models.BooleanField(
        default=True, help_text="Inactive identities are left out of training."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = IdentityQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "identities"
        constraints = [
            # The names' one uniqueness rule, "Ada" and "ada" being the same person, also
            # holds when two requests create them at the same moment.
            models.UniqueConstraint(Lower("name"), name="identity_name_unique_in_any_case")
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = unique_slug(self.name)
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("identities:detail", args=[self.slug])


def normalise_name(name):
    """A person's name in one form: Unicode NFC, runs of whitespace made one space, no
    leading or trailing space. Raises ValidationError when nothing is left or when it holds
    control or invisible formatting characters (zero-width spaces, right-to-left
    overrides): two names that look the same must be the same name."""
    name = " ".join(unicodedata.normalize("NFC", name or "").split())
    if any(unicodedata.category(c) in INVISIBLE_CATEGORIES for c in name):
        raise ValidationError(
            "A name cannot hold control or invisible characters (such as zero-width spaces "
            "or direction overrides)."
        )
    if not name:
        raise ValidationError("A name is needed.")
    return name


def clean_new_name(name, exclude_pk=None):
    """A person's name, normalised (see normalise_name). Raises ValidationError when it is
    empty, holds invisible characters, or another person (exclude_pk aside) has it in any
    case; Django forms and DRF serializers both report that error on the field."""
    name = normalise_name(name)
    if Identity.objects.filter(name__iexact=name).exclude(pk=exclude_pk).exists():
        raise ValidationError(f"There is already a person called {name}.")
    return name


def unique_slug(name):
    base = slugify(name)[:200] or "person"
    slug, n = base, 2
    while Identity.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


class FaceImage(models.Model):
    class Status(models.TextChoices):
        OK = "ok", "OK"
        NO_FACE = "no_face", "No face found"
        SEVERAL_FACES = "several_faces", "Several faces"
        TOO_SMALL = "too_small", "Face too small"
        REJECTED = "rejected", "Rejected"

    class Source(models.TextChoices):
        UPLOAD = "upload", "Uploaded"
        REVIEW = "review", "Confirmed in review"
        IMPORT = "import", "Bulk import"

    identity = models.ForeignKey(Identity, on_delete=models.CASCADE, related_name="images")
    image = models.FileField(max_length=255)
    thumbnail = models.FileField(max_length=255, blank=True)
    face_crop = models.FileField(max_length=255, blank=True, help_text="What training uses.")
    face_chip = models.FileField(
        max_length=255,
        blank=True,
        help_text="Aligned 150x150 face chip: what the face network sees.",
    )
    box = models.JSONField(null=True, blank=True, help_text="[x, y, width, height] of the face.")
    landmarks = models.JSONField(
        null=True,
        blank=True,
        help_text="The 5 face landmarks, [[x, y], ...] in the photo's pixels.",
    )
    embedding = models.BinaryField(
        null=True,
        blank=True,
        help_text="float32 little-endian embedding of face_chip by the base face network.",
    )
    embedding_model = models.CharField(
        max_length=64, blank=True, help_text="Which network made embedding."
    )
    detector_score = models.FloatField(null=True, blank=True)
    candidates = models.JSONField(
        default=list, blank=True, help_text="Boxes of every face found, largest first."
    )
    original_name = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, help_text="Of the uploaded bytes.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OK)
    source = models.CharField(
        max_length=20, choices=Source.choices, default=Source.UPLOAD, help_text="How it came in."
    )
    source_face = models.ForeignKey(
        "PredictionFace",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="training_images",
        help_text="The identified face a reviewer confirmed or corrected into this photo.",
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who uploaded it, or who confirmed the face it comes from.",
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["uploaded_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["identity", "sha256"], name="unique_image_per_identity")
        ]

    def __str__(self):
        return f"{self.identity} #{self.pk}"

    @property
    def is_usable(self):
        return self.status == self.Status.OK

    @property
    def problem(self):
        """Why training leaves this photo out, in words for the person who uploaded it."""
        return STATUS_EXPLANATIONS.get(self.status, "")


STATUS_EXPLANATIONS = {
    FaceImage.Status.NO_FACE: "No face was found, so this photo is not used.",
    FaceImage.Status.SEVERAL_FACES: "Several faces: pick the one that is this person.",
    FaceImage.Status.TOO_SMALL: "The face is too small to learn from.",
    FaceImage.Status.REJECTED: "Rejected by a user; not used.",
}


class OwnedQuerySet(models.QuerySet):
    """Rows someone asked for: identifications, and batches of photos to identify."""

    def visible_to(self, user):
        """The rows `user` may see: every one for an admin, their own for anyone else with
        a role, none for a user without a role or not logged in.

        The one place this rule is written: the result, history and batch pages, photos,
        the API and the review pages' links to whole photos all ask here."""
        if has_role(user, ADMIN):
            return self
        if has_role(user, VIEWER):
            return self.filter(created_by=user)
        return self.none()


class Prediction(models.Model):
    """One identification request and what the model answered."""

    photo = models.FileField(max_length=255, blank=True)
    width = models.PositiveIntegerField(null=True)
    height = models.PositiveIntegerField(null=True)
    model_version = models.ForeignKey(
        "training.ModelVersion", null=True, on_delete=models.SET_NULL, related_name="predictions"
    )
    faces = models.JSONField(default=list)
    strictness = models.CharField(
        max_length=10,
        blank=True,
        help_text="The naming level used (strict, normal or lenient); empty for "
        "identifications made before it was recorded.",
    )
    too_small = models.JSONField(
        default=list, blank=True, help_text="Boxes of faces found but too small to identify."
    )
    latency_ms = models.FloatField(null=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Identification #{self.pk}"

    def get_absolute_url(self):
        return reverse("identities:prediction", args=[self.pk])

    @property
    def best_face(self):
        return self.faces[0] if self.faces else None

    def is_visible_to(self, user):
        """Whether `user` may see this identification (Prediction.objects.visible_to)."""
        return Prediction.objects.visible_to(user).filter(pk=self.pk).exists()


class PredictionFaceQuerySet(models.QuerySet):
    def to_review(self, below_confidence):
        """Pending faces the model was unsure about: unknown, or named with a confidence
        under below_confidence; oldest first."""
        unsure = models.Q(identity__isnull=True) | models.Q(confidence__lt=below_confidence)
        return (
            self.filter(unsure, review=PredictionFace.Review.PENDING)
            .select_related("prediction", "identity", "prediction__created_by")
            .order_by("prediction__created_at", "prediction_id", "index")
        )

    def named_since(self, since):
        """Pending faces the model put a name on in identifications made since `since`,
        most doubtful (lowest confidence) first: the Recent names page."""
        return (
            self.filter(
                review=PredictionFace.Review.PENDING,
                identity__isnull=False,
                prediction__created_at__gte=since,
            )
            .select_related("prediction", "identity", "prediction__created_by")
            .order_by("confidence", "prediction__created_at", "index")
        )


class PredictionFace(models.Model):
    """One face of an identification: what the model said, and what a reviewer said."""

    class Review(models.TextChoices):
        PENDING = "pending", "Not reviewed"
        CONFIRMED = "confirmed", "Confirmed"
        CORRECTED = "corrected", "Corrected"
        REJECTED = "rejected", "Not anyone we know"

    prediction = models.ForeignKey(Prediction, on_delete=models.CASCADE, related_name="face_rows")
    index = models.PositiveSmallIntegerField(help_text="0 is the largest face.")
    box = models.JSONField(help_text="[x, y, width, height] in the photo.")
    identity = models.ForeignKey(
        Identity,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="recognitions",
        help_text="Who the model named; empty for an unknown face.",
    )
    confidence = models.FloatField()
    score = models.FloatField(null=True, blank=True)
    candidates = models.JSONField(default=list, help_text="The model's top-k, best first.")
    face_crop = models.FileField(
        max_length=255, blank=True, help_text="The face with some context, for review."
    )
    crop_box = models.JSONField(
        null=True, blank=True, help_text="Where the face is inside face_crop."
    )
    embedding = models.BinaryField(
        null=True, blank=True, help_text="float32 face embedding, to group unknown faces."
    )
    embedding_version = models.ForeignKey(
        "training.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    embedding_model = models.CharField(
        max_length=64,
        blank=True,
        help_text="The base face network that made embedding (then the same for every model "
        "version); empty when a model version made it.",
    )
    review = models.CharField(max_length=20, choices=Review.choices, default=Review.PENDING)
    reviewed_identity = models.ForeignKey(
        Identity,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviewed_faces",
        help_text="Who the reviewer said it is.",
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    objects = PredictionFaceQuerySet.as_manager()

    class Meta:
        ordering = ["prediction", "index"]
        constraints = [
            models.UniqueConstraint(fields=["prediction", "index"], name="one_row_per_face")
        ]

    def __str__(self):
        return f"Face {self.index + 1} of identification #{self.prediction_id}"

    @property
    def is_pending(self):
        return self.review == self.Review.PENDING

    @property
    def answer(self):
        """The name the face goes by now: the reviewer's word, else the model's."""
        if self.review == self.Review.REJECTED:
            return None
        return self.reviewed_identity or self.identity


class IdentifyBatch(models.Model):
    """Several photos sent to be identified at once; each becomes a Prediction."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Identifying"
        SUCCEEDED = "succeeded", "Finished"
        FAILED = "failed", "Stopped"

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    strictness = models.CharField(max_length=10, default="normal")
    source_name = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    queue_sends = models.PositiveSmallIntegerField(
        default=0, help_text="How many times it was handed to the broker while queued."
    )

    # The same rule as its identifications: each photo becomes a Prediction of its sender.
    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Batch #{self.pk} ({self.source_name})"

    def get_absolute_url(self):
        return reverse("identities:batch", args=[self.pk])

    @property
    def is_finished(self):
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}


class BatchPhoto(models.Model):
    """One file of a batch and what became of it."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting"
        DONE = "done", "Identified"
        REFUSED = "refused", "Refused"

    batch = models.ForeignKey(IdentifyBatch, on_delete=models.CASCADE, related_name="photos")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=255, help_text="The file's name as sent; shown only.")
    staged = models.FileField(
        max_length=255, blank=True, help_text="The checked photo, kept until it is identified."
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    reason = models.TextField(blank=True)
    prediction = models.ForeignKey(
        Prediction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["batch", "position"]

    def __str__(self):
        return self.name
