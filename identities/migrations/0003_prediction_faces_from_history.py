"""One PredictionFace row per face of every identification made before rows were kept.

Their regions and embeddings were never stored: a reviewer's decision on them cuts the
face from the prediction's photo while it is still kept (identities.recognitions.open_region).
"""

from django.db import migrations


def faces_to_rows(apps, schema_editor):
    Prediction = apps.get_model("identities", "Prediction")
    PredictionFace = apps.get_model("identities", "PredictionFace")
    Identity = apps.get_model("identities", "Identity")
    existing = set(Identity.objects.values_list("pk", flat=True))
    rows = []
    for prediction in Prediction.objects.exclude(faces=[]).iterator():
        if PredictionFace.objects.filter(prediction=prediction).exists():
            continue
        for index, face in enumerate(prediction.faces):
            identity_id = face.get("identity_id")
            rows.append(
                PredictionFace(
                    prediction=prediction,
                    index=index,
                    box=face.get("box") or [0, 0, 0, 0],
                    identity_id=identity_id if identity_id in existing else None,
                    confidence=face.get("confidence") or 0.0,
                    score=face.get("score"),
                    candidates=face.get("top_k") or [],
                )
            )
        if len(rows) >= 1000:
            PredictionFace.objects.bulk_create(rows)
            rows = []
    PredictionFace.objects.bulk_create(rows)


def rows_to_nothing(apps, schema_editor):
    apps.get_model("identities", "PredictionFace").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("identities", "0002_corrections_and_privacy")]

    operations = [migrations.RunPython(faces_to_rows, rows_to_nothing)]
