"""Celery tasks of the identities app: thin wrappers over plain functions.

identify_batch, sent by identities.batches, is declared there (see there why) and imported
here so that a worker, which loads every app's tasks module, knows it.
"""

from celery import shared_task

from training.services import remove_leftover_work_dirs

from . import batches, housekeeping, recognitions
from .batches import identify_batch  # noqa: F401  (registered with the worker through here)


@shared_task
def requeue_lost_batches():
    """Beat's check for queued batches whose message the broker lost. Safe to repeat."""
    return batches.requeue_lost_batches()


@shared_task
def purge_expired_predictions():
    """Beat's retention purge (see identities.recognitions.purge_expired). Safe to repeat."""
    return recognitions.purge_expired()


@shared_task
def remove_orphan_files():
    """Beat's daily sweep of photos a killed process left without a row (see
    identities.housekeeping). Safe to repeat; returns how many files it removed."""
    remove_leftover_work_dirs()
    return len(housekeeping.remove_orphan_files())
