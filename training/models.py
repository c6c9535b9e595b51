from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class TrainingJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Trigger(models.TextChoices):
        BUTTON = "button", "Train button"
        COMMAND = "command", "manage.py train"
        API = "api", "API"
        SCHEDULE = "schedule", "Schedule"

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    params = models.JSONField(default=dict, help_text="TrainConfig plus the dataset split.")
    history = models.JSONField(default=list, help_text="One entry per finished epoch.")
    progress = models.JSONField(default=dict, help_text="Current epoch and batch while running.")
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    celery_task_id = models.CharField(max_length=255, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    device = models.CharField(max_length=50, blank=True)
    dataset_hash = models.CharField(max_length=64, blank=True)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.BUTTON)
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

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Training job #{self.pk} ({self.status})"

    def get_absolute_url(self):
        return reverse("training:job", args=[self.pk])

    @property
    def is_finished(self):
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED, self.Status.CANCELLED}

    @property
    def duration_seconds(self):
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def last_epoch(self):
        return self.history[-1] if self.history else None

    @property
    def worker_silent_minutes(self):
        """Whole minutes since the worker running this job last reported, once that is longer
        than FACEWEB_JOB_SILENT_SECONDS (the whole worker was killed?); None otherwise."""
        if self.status != self.Status.RUNNING or self.heartbeat_at is None:
            return None
        silent = (timezone.now() - self.heartbeat_at).total_seconds()
        if silent < settings.FACEWEB_JOB_SILENT_SECONDS:
            return None
        return int(silent // 60)

    @property
    def warning(self):
        """What the job page and the API say about a running job whose worker went silent."""
        minutes = self.worker_silent_minutes
        if minutes is None:
            return ""
        limit = round(settings.FACEWEB_JOB_STALE_SECONDS / 60)
        return (
            f"No worker has reported on this job for {minutes} minutes: its worker may have "
            f"been stopped or killed. It will be marked failed after {limit} minutes without "
            "a report; until then it may still finish if the worker comes back."
        )


class ModelVersion(models.Model):
    job = models.OneToOneField(
        TrainingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_version"
    )
    artifact = models.FileField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField(default=0)
    architecture = models.CharField(max_length=50)
    classes = models.JSONField(help_text="[{id, name, folder}] in the model's output order.")
    metrics = models.JSONField(default=dict)
    calibration = models.JSONField(default=dict)
    params = models.JSONField(default=dict)
    dataset_hash = models.CharField(max_length=64)
    is_active = models.BooleanField(default=False)
    is_stale = models.BooleanField(
        default=False, help_text="An identity it was trained on has been deleted since."
    )
    deleted_identities = models.JSONField(
        default=list,
        blank=True,
        help_text="[{id, deleted_at}] of people deleted since: their faces are still inside "
        "these weights until the version itself is deleted.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=models.Q(is_active=True),
                name="one_active_model_version",
            )
        ]

    def __str__(self):
        return f"v{self.pk}"

    @property
    def val_accuracy(self):
        return self.metrics.get("val_accuracy")

    @property
    def class_names(self):
        return [c["name"] for c in self.classes]
