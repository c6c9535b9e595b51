"""Celery tasks of bulk imports: thin wrappers, on the default queue.

run_import (the task that runs an import) is declared in imports.worker beside the code
that sends it (see there why); it is imported here so that a worker, which loads every
app's tasks module, knows it.
"""

from celery import shared_task
from celery.signals import worker_ready

from . import services, worker
from .worker import run_import_task as run_import  # noqa: F401  (registered through here)


@shared_task
def requeue_lost_imports():
    """Beat's check for queued imports whose message the broker lost. Safe to repeat."""
    return services.requeue_lost_imports()


@worker_ready.connect
def resume_imports_left_running_by_this_worker(sender=None, **kwargs):
    # A worker that is just starting runs nothing yet: an import still shown as running
    # under its node name was cut short when that worker died. It is safe to resume.
    node_name = getattr(sender, "hostname", None)
    if node_name:
        worker.requeue_left_by(node_name)
