import argparse
import time

from django.core.management.base import BaseCommand, CommandError

from training import services
from training.models import TrainingJob
from training.parameters import stages_by_network, training_parameters

# With --wait, say so when no worker has picked the job up after this long.
NO_WORKER_HINT_SECONDS = 30


class Command(BaseCommand):
    help = "Queue a training job, like the Train button. With --wait, follow it to its end."

    def add_arguments(self, parser):
        # One option per training parameter (training.parameters), as on the Training page.
        for parameter in training_parameters():
            parser.add_argument(
                "--" + parameter.name.replace("_", "-"),
                type=option_type(parameter),
                choices=parameter.choices or None,
                help=option_help(parameter),
            )
        parser.add_argument("--wait", action="store_true", help="block until the job ends")

    def handle(self, wait, **options):
        names = [parameter.name for parameter in training_parameters()]
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


def option_type(parameter):
    """argparse's type for a parameter: converts, then refuses a value out of range with
    the words the Training page and the API use."""

    def convert(text):
        value = parameter.kind(text)
        error = parameter.range_error(value)
        if error:
            raise argparse.ArgumentTypeError(error)
        return value

    convert.__name__ = parameter.kind.__name__  # argparse names the type in its errors
    return convert


def option_help(parameter):
    text = parameter.help
    if parameter.name == "fine_tune_from":
        text += f" Stages: {stages_by_network()}."
    if parameter.allowed():
        text += f" ({parameter.allowed()})"
    return text.replace("%", "%%")
