"""Celery tasks of bulk imports: thin wrappers over imports.services, on the default queue."""

from celery import shared_task
from celery.signals import worker_ready


@shared_task(bind=True, acks_late=True)
def run_import(self, import_id):
    """Import BulkImport import_id. A second delivery while it runs does nothing; a delivery
    after the process running it died resumes it where it stopped."""
    from .services import run_import as run

    return run(import_id, worker=self.request.hostname or "")


@shared_task
def requeue_lost_imports():
    """Beat's check for queued imports whose message the broker lost. Safe to repeat."""
    from .services import requeue_lost_imports as requeue

    return requeue()


@worker_ready.connect
def resume_imports_left_running_by_this_worker(sender=None, **kwargs):
    # A worker that is just starting runs nothing yet: an import still shown as running
    # under its node name was cut short when that worker died. It is safe to resume.
    node_name = getattr(sender, "hostname", None)
    if node_name:
        from .services import requeue_left_by

        requeue_left_by(node_name)
