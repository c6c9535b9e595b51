"""kill -9 of a training worker in the middle of a job, with real processes: the job ends
failed with a reason, never stuck as running, and the active model stays as it was."""

import os
import signal
import subprocess
import time

import pytest

from tests.images import write_people

pytestmark = pytest.mark.integration
# A ResNet18 from random weights: slow enough per epoch to be killed mid-job.
RESNET_TRAIN = ["--architecture", "resnet18", "--image-size", "64", "--batch-size", "4",
                "--pretrained", "none"]  # fmt: skip
LONG = ["--epochs", "300", *RESNET_TRAIN]


def job_row(app, field):
    script = f"from training.models import TrainingJob as J; print(J.objects.get().{field})"
    return app.manage("shell", "--no-imports", "-c", script).stdout.strip()


def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.fixture
def running_job(app, tmp_path):
    app.manage("import_faces", write_people(tmp_path / "people", people=2, per_person=4))
    worker = app.start_worker("--hostname", "crash-test@%h")
    app.manage("train", *LONG)
    wait_for(lambda: job_row(app, "status") == "running", 60, "the job to start")
    return worker


def test_killing_the_process_running_a_job_fails_the_job_with_a_reason(app, running_job):
    (child,) = children(running_job.pid)  # prefork: the job runs in the pool's child
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: job_row(app, "status") == "failed", 60, "the job to be failed")
    assert "process running this job died" in job_row(app, "error")


def test_a_worker_restarted_after_kill_9_fails_the_job_it_left_running(app, running_job):
    for pid in [*children(running_job.pid), running_job.pid]:
        os.kill(pid, signal.SIGKILL)
    running_job.wait()
    assert job_row(app, "status") == "running"  # nobody has noticed yet
    app.start_worker("--hostname", "crash-test@%h")
    wait_for(lambda: job_row(app, "status") == "failed", 60, "the restarted worker")
    assert "restarted while this job ran" in job_row(app, "error")
