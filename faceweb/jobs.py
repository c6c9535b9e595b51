"""Bookkeeping shared by the rows that a worker runs: TrainingJob, BulkImport, IdentifyBatch.

Each such model has `status` (Status with QUEUED, RUNNING, SUCCEEDED, FAILED), `worker`,
`error`, `started_at`, `finished_at`, `heartbeat_at` (while running: the worker's last
report; while queued: when it was last sent) and `queue_sends`. Every change of status here
is one conditional UPDATE, so two processes racing for a row (a task delivered twice, a
reaper and a finishing worker) never both win. What each app does beyond this
differs on purpose, and is said where it does:

- a task delivered again after the process running it died: a training job fails (it could
  kill its process again, for ever); an import resumes, a few times (its files are done one
  by one); a batch is left to be stopped as stale and resumed by a person;
- a worker that restarts: its training jobs fail, its imports are queued again;
- dead workers: training reaps every silent job, imports and batches are stopped one at a
  time when their page is read, each after its own silence (FACEWEB_JOB_STALE_SECONDS,
  FACEWEB_IMPORT_STALE_SECONDS).

It sits in faceweb, which otherwise only wires things up, because three apps share it and
none of them should import another for it.
"""

import logging
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, F, Q
from django.template.defaultfilters import pluralize
from django.utils import timezone
from kombu.exceptions import OperationalError

log = logging.getLogger(__name__)


class QueueUnavailable(Exception):
    """The task queue (broker) cannot be reached: nothing was handed to any worker."""


def send(task, model, pk, queue_down):
    """task.delay(pk); returns what it returns.

    Raises QueueUnavailable when the broker cannot be reached, after failing the row (if
    still queued) with queue_down as its error: no worker will ever hear of it, so it must
    not wait as "queued" for ever.
    """
    try:
        return task.delay(pk)
    except OperationalError as exc:
        log.warning("%s %s: the task queue is unreachable", model.__name__, pk, exc_info=True)
        model.objects.filter(pk=pk, status=model.Status.QUEUED).update(
            status=model.Status.FAILED, finished_at=timezone.now(), error=queue_down
        )
        raise QueueUnavailable(queue_down) from exc


def record_send(model, pk):
    """A queued row was handed to the broker (once more): count it, and stamp heartbeat_at
    with when, so that requeue_lost knows how long it has waited since."""
    model.objects.filter(pk=pk, status=model.Status.QUEUED).update(
        heartbeat_at=timezone.now(), queue_sends=F("queue_sends") + 1
    )


def claim(model, pk, worker="", **fields):
    """Move a queued row to running (setting fields too); True when this caller won."""
    now = timezone.now()
    Status = model.Status
    claimed = model.objects.filter(pk=pk, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker, **fields
    )
    return claimed == 1


def report(model, pk):
    """The worker running row pk is alive: its heartbeat is now."""
    model.objects.filter(pk=pk).update(heartbeat_at=timezone.now())


def finish(model, pk, status, error="", **fields):
    """Record a running row's end; True when it was still running.

    Only a running row is finished, so one already failed as stale stays failed.
    """
    Status = model.Status
    done = model.objects.filter(pk=pk, status=Status.RUNNING).update(
        status=status, error=error, finished_at=timezone.now(), **fields
    )
    return done == 1


def fail_stale(rows, silent_seconds, error):
    """Fail the running rows among `rows` (a queryset) whose worker has not reported for
    silent_seconds: it was killed or lost. Returns how many. Safe any time, anywhere."""
    Status = rows.model.Status
    cutoff = timezone.now() - timedelta(seconds=silent_seconds)
    return rows.filter(status=Status.RUNNING, heartbeat_at__lt=cutoff).update(
        status=Status.FAILED, finished_at=timezone.now(), error=error
    )


def requeue_lost(model, *, busy_seconds, queued_at, never_delivered, enqueue):
    """Send again the rows queued for longer than FACEWEB_QUEUE_LOST_SECONDS: their message
    may have been lost (a broker restarted without persistence). A second delivery of one
    still waiting in the queue does nothing twice, as the worker claims a row once.

    A row already sent FACEWEB_QUEUE_MAX_SENDS times fails with never_delivered(row, now),
    and enqueue(pk) fails one the broker refuses now. While a row runs and reports (within
    busy_seconds), the queued ones may be waiting behind it: they are left alone. queued_at
    names the field that says when a row was queued if it was never sent. Safe to repeat.
    Returns the ids sent again.
    """
    now = timezone.now()
    Status = model.Status
    running_since = now - timedelta(seconds=busy_seconds)
    if model.objects.filter(status=Status.RUNNING, heartbeat_at__gte=running_since).exists():
        return []
    cutoff = now - timedelta(seconds=settings.FACEWEB_QUEUE_LOST_SECONDS)
    waiting = model.objects.filter(status=Status.QUEUED).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, **{f"{queued_at}__lt": cutoff})
    )
    given_up = waiting.filter(queue_sends__gte=settings.FACEWEB_QUEUE_MAX_SENDS)
    for row in given_up.only("pk", queued_at, "queue_sends"):
        model.objects.filter(pk=row.pk, status=Status.QUEUED).update(
            status=Status.FAILED, finished_at=now, error=never_delivered(row, now)
        )
    return [pk for pk in waiting.values_list("pk", flat=True) if enqueue(pk)]


def progress(items, pending, counted: dict) -> dict:
    """{total, done, waiting, <name>: count for each name: state of counted, percent} of
    the items a job works through (an import's files, a batch's photos): a queryset with a
    `state` field, pending the state of the items not done yet. One query."""
    states = Counter(dict(items.values_list("state").annotate(n=Count("pk")).order_by()))
    total = sum(states.values())
    done = total - states[pending]
    counts = {name: states[state] for name, state in counted.items()}
    percent = round(100 * done / total) if total else 100
    return {"total": total, "done": done, "waiting": states[pending], **counts, "percent": percent}


def times_sent(row, since, now):
    """A row's sends since `since`, as "sent to the task queue 3 times over 31 minutes"."""
    minutes = round((now - (since or now)).total_seconds() / 60)
    return (
        f"sent to the task queue {row.queue_sends} time{pluralize(row.queue_sends)} over "
        f"{minutes} minute{pluralize(minutes)}"
    )
