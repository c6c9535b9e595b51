from django.conf import settings
from django.db import models
from django.urls import reverse


class BulkImport(models.Model):
    """A zip (or folder) of people's photos: previewed, confirmed, then imported by a worker."""

    class Status(models.TextChoices):
        PREVIEW = "preview", "Waiting for confirmation"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        SUCCEEDED = "succeeded", "Finished"
        FAILED = "failed", "Stopped"

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PREVIEW)
    archive = models.FileField(max_length=255, help_text="The zip, kept until it is imported.")
    source_name = models.CharField(max_length=255, blank=True)
    people = models.JSONField(
        default=list, help_text="[{name, identity_id, photos, skipped}] as previewed."
    )
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    queue_sends = models.PositiveSmallIntegerField(
        default=0, help_text="How many times it was handed to the broker while queued."
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Import #{self.pk} ({self.source_name})"

    def get_absolute_url(self):
        return reverse("imports:detail", args=[self.pk])

    @property
    def is_finished(self):
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}


class ImportFile(models.Model):
    """One file of an import and what became of it."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting"
        ADDED = "added", "Added"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Refused"

    bulk_import = models.ForeignKey(BulkImport, on_delete=models.CASCADE, related_name="files")
    position = models.PositiveIntegerField(help_text="Index of the member in the zip.")
    path = models.TextField()
    person = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    reason = models.TextField(blank=True)
    face_image = models.ForeignKey(
        "identities.FaceImage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["bulk_import", "position"]
        indexes = [models.Index(fields=["bulk_import", "state"])]

    def __str__(self):
        return self.path
