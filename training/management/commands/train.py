import time

from django.core.management.base import BaseCommand, CommandError

from training import services
from training.ml.config import ARCHITECTURES, FINE_TUNE_CHOICES, HEADS
from training.models import TrainingJob

# With --wait, say so when no worker has picked the job up after this long.
NO_WORKER_HINT_SECONDS = 30


class Command(BaseCommand):
    help = "Queue a training job, like the Train button. With --wait, follow it to its end."

    def add_arguments(self, parser):
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--learning-rate", type=float)
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--image-size", type=int)
        parser.add_argument(
            "--architecture", choices=ARCHITECTURES, help="default: dlib-face-resnet"
        )
        parser.add_argument("--fine-tune-from", choices=FINE_TUNE_CHOICES)
        parser.add_argument("--head", choices=HEADS)
        parser.add_argument(
            "--pretrained",
            help="auto (the network's own weights), none, or a state-dict file in the models "
            "folder",
        )
        parser.add_argument("--seed", type=int)
        parser.add_argument("--val-fraction", type=float)
        parser.add_argument("--split-seed", type=int)
        parser.add_argument("--wait", action="store_true", help="block until the job ends")

    def handle(self, wait, **options):
        names = [
            "architecture",
            "head",
            "epochs",
            "learning_rate",
            "batch_size",
            "image_size",
            "fine_tune_from",
            "pretrained",
            "seed",
            "val_fraction",
            "split_seed",
        ]
        params = {name: options[name] for name in names if options.get(name) is not None}
        try:
            job = services.start_training(trigger=TrainingJob.Trigger.COMMAND, **params)
        except (services.NotEnoughData, services.QueueUnavailable, ValueError) as exc:
            raise CommandError(str(exc)) from None
        if job.already_started:
            self.stdout.write(f"training job #{job.pk} on the same photos is already {job.status}")
        else:
            self.stdout.write(f"queued training job #{job.pk}")
        if wait:
            self.follow(job)

    def follow(self, job):
        printed, started, hinted = 0, time.monotonic(), False
        while True:
            job.refresh_from_db()
            for row in job.history[printed:]:
                self.stdout.write(_epoch_line(row))
            printed = len(job.history)
            if job.is_finished:
                break
            if (
                job.status == TrainingJob.Status.QUEUED
                and not hinted
                and time.monotonic() - started > NO_WORKER_HINT_SECONDS
            ):
                self.stderr.write("still queued: is a worker running? (celery -A faceweb worker)")
                hinted = True
            time.sleep(1)
        if job.status != TrainingJob.Status.SUCCEEDED:
            raise CommandError(f"job #{job.pk} {job.status}: {job.error}")
        version = job.model_version
        active = " (active)" if version.is_active else ""
        self.stdout.write(
            f"job #{job.pk} succeeded: model {version}{active} "
            f"val_accuracy={version.val_accuracy} device={job.device}"
        )


def _epoch_line(row):
    val = row.get("val_accuracy")
    val_text = f"{val:.4f}" if val is not None else "n/a"
    return (
        f"epoch {row['epoch']}/{row['epochs']} loss={row['loss']:.4f} "
        f"train_acc={row['train_accuracy']:.4f} val_acc={val_text} "
        f"seconds={row['seconds']:.1f} images_per_s={row['images_per_second']:.1f}"
    )
