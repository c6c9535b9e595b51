"""Celery tasks: thin wrappers that take ids and call the job runner."""

from celery import shared_task
from celery.signals import worker_ready
from django.utils import timezone

from .models import TrainingJob


@shared_task(bind=True, acks_late=True)
def run_training_job(self, job_id):
    """Run TrainingJob job_id. A second delivery of the same job does nothing."""
    from .jobs import run_job

    return run_job(job_id, worker=self.request.hostname or "")


@shared_task
def retrain_if_data_changed():
    """Beat's scheduled retraining: starts a job only when the photos changed."""
    from . import services

    services.reap_stale_jobs()
    job = services.retrain_if_data_changed()
    return job.pk if job else None


@shared_task
def requeue_lost_jobs():
    """Beat's check for queued jobs whose message the broker lost (see
    services.requeue_lost_jobs). Safe to repeat."""
    from . import services

    return services.requeue_lost_jobs()


@worker_ready.connect
def fail_jobs_left_running_by_this_worker(sender=None, **kwargs):
    # A worker that is just starting runs nothing yet: a job still shown as running under
    # its node name was left behind when that worker died.
    node_name = getattr(sender, "hostname", None)
    if not node_name:
        return
    TrainingJob.objects.filter(status=TrainingJob.Status.RUNNING, worker=node_name).update(
        status=TrainingJob.Status.FAILED,
        finished_at=timezone.now(),
        error="The worker was restarted while this job ran. Start a new training job.",
    )
    from .services import remove_leftover_work_dirs

    remove_leftover_work_dirs()
