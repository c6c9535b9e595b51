"""The Celery app. A worker started as `celery -A faceweb worker` serves every queue."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "faceweb.settings")

app = Celery("faceweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Declared here rather than left to routing so that a worker without -Q consumes all of them.
app.conf.task_queues = (Queue("default"), Queue("training"))
app.autodiscover_tasks()


def _make_embedded_broker_folders():
    # kombu's filesystem transport expects its folders to exist.
    options = app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)


if str(app.conf.broker_url).startswith("filesystem://"):
    _make_embedded_broker_folders()
