"""How long the worker takes to train the default model, end to end, on a whole dataset.

    python bench/train_time.py --dataset ../shared/datasets/lfw_many

Imports every person of DIR into a throw-away database (as `manage.py import_faces` does:
detection, alignment, base embeddings), then runs one training job of the default
configuration in this process, as a worker runs it: export of the aligned faces, fit,
calibration, checkpoint and its evaluation. Prints the import time and
`people=<n> photos=<n> train_seconds=<s>` (the job's wall time, import excluded).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, type=Path)
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="faceweb-train-time-")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="faceweb.settings", FACEWEB_DATA_DIR=data, FACEWEB_TORCH_THREADS="0"
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    call_command("import_faces", str(args.dataset), verbosity=0)
    print(f"import_seconds={time.perf_counter() - started:.1f}", flush=True)

    from identities.models import FaceImage, Identity
    from training import services
    from training.jobs import run_job
    from training.models import TrainingJob

    job = TrainingJob.objects.create(params=services.default_params())
    started = time.perf_counter()
    status = run_job(job.pk)
    seconds = time.perf_counter() - started
    job.refresh_from_db()
    if status != TrainingJob.Status.SUCCEEDED:
        raise SystemExit(f"the job ended {status}: {job.error}")
    people = job.model_version.classes
    photos = FaceImage.objects.filter(status=FaceImage.Status.OK).count()
    print(
        f"people={len(people)} of {Identity.objects.count()} photos={photos} "
        f"val_accuracy={job.model_version.metrics['val_accuracy']:.4f} train_seconds={seconds:.1f}"
    )


if __name__ == "__main__":
    main()
