"""Celery tasks of the identities app: thin wrappers over plain functions."""

from celery import shared_task


@shared_task
def purge_expired_predictions():
    """Beat's retention purge (see identities.recognitions.purge_expired). Safe to repeat."""
    from .recognitions import purge_expired

    return purge_expired()
