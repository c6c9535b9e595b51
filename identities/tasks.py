"""Celery tasks of the identities app: thin wrappers over plain functions."""

from celery import shared_task


@shared_task
def purge_expired_predictions():
    """Beat's retention purge (see identities.recognitions.purge_expired). Safe to repeat."""
    from .recognitions import purge_expired

    return purge_expired()


@shared_task
def remove_orphan_files():
    """Beat's daily sweep of photos a killed process left without a row (see
    identities.housekeeping). Safe to repeat; returns how many files it removed."""
    from training.services import remove_leftover_work_dirs

    from .housekeeping import remove_orphan_files

    remove_leftover_work_dirs()
    return len(remove_orphan_files())


@shared_task(bind=True, acks_late=True)
def identify_batch(self, batch_id):
    """Identify the photos of IdentifyBatch batch_id still waiting (identities.batches).
    A second delivery while it runs does nothing."""
    from .batches import run_batch

    return run_batch(batch_id, worker=self.request.hostname or "")
