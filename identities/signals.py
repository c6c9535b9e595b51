"""Files go with their rows: deleting a photo (or a whole person) deletes what was stored."""

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import FaceImage, Prediction, PredictionFace


def _delete_files_on_commit(*files):
    names = [(f.storage, f.name) for f in files if f]

    def delete():
        for storage, name in names:
            storage.delete(name)

    # After commit, so a rolled-back delete keeps its files.
    transaction.on_commit(delete)


@receiver(post_delete, sender=FaceImage)
def delete_face_image_files(sender, instance, **kwargs):
    _delete_files_on_commit(
        instance.image, instance.thumbnail, instance.face_crop, instance.face_chip
    )


@receiver(post_delete, sender=Prediction)
def delete_prediction_photo(sender, instance, **kwargs):
    _delete_files_on_commit(instance.photo)


@receiver(post_delete, sender=PredictionFace)
def delete_prediction_face_crop(sender, instance, **kwargs):
    _delete_files_on_commit(instance.face_crop)
