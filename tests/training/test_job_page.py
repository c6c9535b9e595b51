"""The job page, its status poll and the API tell a trainer when a running job's worker has
gone silent (killed with the whole worker), before the stale-job reaper fails it."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tests.training.conftest import TINY
from training.models import TrainingJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def trainer_client(client, make_user):
    client.force_login(make_user("trainer"))
    return client


def running_job(reported_ago):
    return TrainingJob.objects.create(
        params=TINY,
        status=TrainingJob.Status.RUNNING,
        worker="training@dead",
        started_at=timezone.now() - timedelta(hours=1),
        heartbeat_at=timezone.now() - reported_ago,
    )


def test_the_job_page_says_no_worker_has_reported_for_n_minutes(trainer_client, settings):
    settings.FACEWEB_JOB_STALE_SECONDS = 15 * 60
    job = running_job(reported_ago=timedelta(minutes=7, seconds=10))
    page = trainer_client.get(job.get_absolute_url()).content.decode()
    assert "No worker has reported on this job for 7 minutes" in page
    assert "marked failed after 15 minutes without a report" in page
    assert TrainingJob.objects.get().status == TrainingJob.Status.RUNNING  # not reaped yet


def test_the_job_status_poll_carries_the_same_warning(trainer_client):
    job = running_job(reported_ago=timedelta(minutes=4))
    data = trainer_client.get(reverse("training:job_status", args=[job.pk])).json()
    assert data["worker_silent_minutes"] == 4
    assert "No worker has reported on this job for 4 minutes" in data["warning"]


def test_the_api_says_how_long_no_worker_has_reported(make_user):
    job = running_job(reported_ago=timedelta(minutes=5))
    api = APIClient()
    api.force_authenticate(make_user("trainer"))
    data = api.get(reverse("api:job-detail", args=[job.pk])).json()
    assert data["worker_silent_minutes"] == 5
    assert "No worker has reported on this job for 5 minutes" in data["warning"]


def test_a_job_whose_worker_reports_shows_no_warning(trainer_client, make_user):
    job = running_job(reported_ago=timedelta(seconds=5))
    assert (
        "No worker has reported" not in trainer_client.get(job.get_absolute_url()).content.decode()
    )
    api = APIClient()
    api.force_authenticate(make_user("trainer", "other-trainer"))
    data = api.get(reverse("api:job-detail", args=[job.pk])).json()
    assert (data["worker_silent_minutes"], data["warning"]) == (None, "")
