"""Celery tasks of training: thin wrappers that take ids.

run_training_job, the task that runs a job on the "training" queue, is declared in
training.jobs beside the code that sends it (see there why); it is imported here so that a
worker, which loads every app's tasks module, knows it.
"""

from celery import shared_task
from celery.signals import worker_ready

from . import jobs
from .jobs import run_training_job  # noqa: F401  (registered with the worker through here)


@shared_task
def retrain_if_data_changed():
    """Beat's scheduled retraining: starts a job only when the photos changed."""
    jobs.reap_stale_jobs()
    job = jobs.retrain_if_data_changed()
    return job.pk if job else None


@shared_task
def requeue_lost_jobs():
    """Beat's check for queued jobs whose message the broker lost (see
    jobs.requeue_lost_jobs). Safe to repeat."""
    return jobs.requeue_lost_jobs()


@worker_ready.connect
def fail_jobs_left_running_by_this_worker(sender=None, **kwargs):
    # A worker that is just starting runs nothing yet: a job still shown as running under
    # its node name was left behind when that worker died.
    node_name = getattr(sender, "hostname", None)
    if node_name:
        jobs.fail_jobs_left_by(node_name)
