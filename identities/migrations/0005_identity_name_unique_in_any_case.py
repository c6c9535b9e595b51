import unicodedata

import django.db.models.functions.text
from django.db import migrations, models


def tidy_names(apps, schema_editor):
    """Names in their one form (NFC, single spaces); a name that only differs in case from
    an earlier one gets a number, so that the constraint can be added. Safe to run twice."""
    Identity = apps.get_model("identities", "Identity")
    seen = set()
    for identity in Identity.objects.order_by("pk"):
        name = " ".join(unicodedata.normalize("NFC", identity.name).split()) or "person"
        candidate, n = name, 2
        while candidate.lower() in seen:
            candidate, n = f"{name} ({n})", n + 1
        seen.add(candidate.lower())
        if candidate != identity.name:
            Identity.objects.filter(pk=identity.pk).update(name=candidate[:200])


class Migration(migrations.Migration):
    dependencies = [
        ("identities", "0004_face_chips_and_embeddings"),
    ]

    operations = [
        migrations.RunPython(tidy_names, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="identity",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("name"),
                name="identity_name_unique_in_any_case",
            ),
        ),
    ]
