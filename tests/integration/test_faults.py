"""Faults with real processes: a web worker killed mid-upload, Redis restarted and the
database connection dropped during a training job, and two trainers pressing Train at the
same moment. Afterwards nothing is half-stored, no job is stuck, and nothing runs twice."""

import json
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.images import jpeg_bytes, write_people
from tests.integration.test_crashes import RESNET_TRAIN, children, wait_for
from tests.integration.test_deployment import free_port, wait_until_up

pytestmark = pytest.mark.integration
TRAIN = RESNET_TRAIN


def shell(app, script):
    return app.manage("shell", "--no-imports", "-c", script).stdout.strip()


def make_users(app, **roles):
    """Users with roles and API tokens, made in one process; returns {username: token}."""
    script = (
        "import json\n"
        "from django.contrib.auth import get_user_model\n"
        "from rest_framework.authtoken.models import Token\n"
        "from accounts.roles import set_role\n"
        "tokens = {}\n"
        f"for name, role in {roles!r}.items():\n"
        "    user = get_user_model().objects.create_user(name)\n"
        "    set_role(user, role)\n"
        "    tokens[name] = Token.objects.create(user=user).key\n"
        "print(json.dumps(tokens))\n"
    )
    return json.loads(shell(app, script))


def jobs(app):
    script = (
        "import json; from training.models import TrainingJob as J\n"
        "print(json.dumps(list(J.objects.order_by('pk').values('pk', 'status', 'error'))))"
    )
    return json.loads(shell(app, script))


def job_status(app, pk):
    return next(job for job in jobs(app) if job["pk"] == pk)["status"]


def versions(app):
    script = "from training.models import ModelVersion as V; print(V.objects.count())"
    return int(shell(app, script))


def web(app, workers=2):
    port = free_port()
    server = app.start_web(port, workers=workers)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base + "/healthz")
    return server, base


# --- two trainers at the same moment ------------------------------------------------------


def test_trainers_pressing_train_at_the_same_moment_start_one_job(app, tmp_path):
    app.manage("import_faces", write_people(tmp_path / "people", people=2, per_person=3))
    tokens = list(make_users(app, ann="trainer", bob="trainer").values())
    _, base = web(app, workers=4)
    presses = 8

    def press_train(token, barrier, epochs):
        barrier.wait()
        return requests.post(
            f"{base}/api/v1/training-jobs/",
            json={"epochs": epochs},
            headers={"Authorization": f"Token {token}"},
            timeout=60,
        )

    for epochs in (3, 4):  # two rounds, each with its own settings
        barrier = threading.Barrier(presses)
        with ThreadPoolExecutor(presses) as pool:
            trainers = tokens * (presses // len(tokens))
            answers = list(pool.map(press_train, trainers, [barrier] * presses, [epochs] * presses))
        codes = sorted(answer.status_code for answer in answers)
        assert codes == [200] * (presses - 1) + [201], [answer.text for answer in answers]
        assert len({a.json()["id"] for a in answers}) == 1
    assert [job["status"] for job in jobs(app)] == ["queued", "queued"]


# --- a web worker killed mid-upload -------------------------------------------------------


def photo_rows(app):
    script = (
        "import json; from identities.models import FaceImage as F\n"
        "print(json.dumps([[f.image.name, f.thumbnail.name, f.face_crop.name, f.face_chip.name] "
        "for f in F.objects.all()]))"
    )
    return json.loads(shell(app, script))


def stored(media):
    """Names of the files under media (none when nothing was ever stored)."""
    return {str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()}


@pytest.fixture
def upload_target(app):
    token = make_users(app, eve="editor")["eve"]
    server, base = web(app, workers=1)
    http = requests.Session()
    http.headers["Authorization"] = f"Token {token}"
    ada = http.post(f"{base}/api/v1/identities/", json={"name": "Ada"}, timeout=30).json()
    return server, http, f"{base}/api/v1/identities/{ada['id']}/images/"


def test_a_web_worker_killed_mid_upload_leaves_no_half_stored_photo(app, upload_target):
    server, http, url = upload_target
    media = app.tmp_path / "data" / "media"
    photos = [("images", (f"{i}.jpg", jpeg_bytes(0, i, size=256), "image/jpeg")) for i in range(30)]
    outcome = {}

    def upload():
        try:
            outcome["response"] = http.post(url, files=photos, timeout=120)
        except requests.ConnectionError as exc:
            outcome["error"] = exc

    sender = threading.Thread(target=upload)
    sender.start()
    wait_for(lambda: len(list(media.glob("faces/*"))) >= 4, 60, "a few photos to be stored")
    (worker,) = children(server.pid)
    os.kill(worker, signal.SIGKILL)
    sender.join(60)
    assert "error" in outcome, "the upload finished before the worker was killed"

    rows = photo_rows(app)
    assert 0 < len(rows) < len(photos)
    for row in rows:  # every recorded photo is whole
        assert {name for name in row if name} <= stored(media), row
    app.manage("remove_orphan_files", "--older-than-minutes", "0")
    assert stored(media) == {name for row in rows for name in row if name}

    # gunicorn replaced the worker; sending the same photos again stores each exactly once.
    wait_for(lambda: len(children(server.pid)) == 1, 30, "a new web worker")
    again = http.post(url, files=photos, timeout=120)
    assert again.status_code == 201, again.text
    assert len(again.json()["created"]) == len(photos) - len(rows)
    assert all("already among" in r["reason"] for r in again.json()["refused"])
    rows = photo_rows(app)
    assert len(rows) == len(photos)
    assert stored(media) == {name for row in rows for name in row if name}


def test_a_web_worker_killed_while_the_upload_still_arrives_stores_nothing(app, upload_target):
    server, http, url = upload_target
    body = b"--b\r\nContent-Disposition: form-data; name=images; filename=a.jpg\r\n\r\n"
    body += jpeg_bytes(0, 0)
    host, port = url.split("/")[2].split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = (
            f"POST /{url.split('/', 3)[3]} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: {http.headers['Authorization']}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {len(body) * 4}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)  # a quarter of what it announced
        time.sleep(1)
        (worker,) = children(server.pid)
        os.kill(worker, signal.SIGKILL)
    assert photo_rows(app) == []
    assert stored(app.tmp_path / "data" / "media") == set()
    wait_for(lambda: len(children(server.pid)) == 1, 30, "a new web worker")
    assert http.post(url, files={"images": ("a.jpg", jpeg_bytes(0, 0))}).status_code == 201


# --- Redis restarted during a job ---------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path):
    """A Redis server of this test's own, restartable; like the stock Redis image it saves
    its data on shutdown and loads it on start."""
    port = free_port()
    folder = tmp_path / "redis"
    folder.mkdir()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
               "--save", "3600 1", "--logfile", str(folder / "log")]  # fmt: skip
    server = {}

    def start():
        server["process"] = subprocess.Popen(command)
        wait_for(lambda: ping(port), 20, "redis to start")

    def stop():
        server["process"].terminate()
        server["process"].wait(20)

    start()
    yield f"redis://127.0.0.1:{port}/0", start, stop
    if server["process"].poll() is None:
        stop()


def ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_jobs_survive_a_redis_restart_and_none_is_left_queued_or_running(app, tmp_path, own_redis):
    broker, start_redis, stop_redis = own_redis
    app.env["CELERY_BROKER_URL"] = broker
    app.manage("import_faces", write_people(tmp_path / "people", people=2, per_person=4))
    app.start_worker()
    # Job 1 runs through the restart: long enough to be seen running, as each look at the
    # jobs is a manage.py process of a few seconds (5 epochs could end between two looks).
    app.manage("train", "--epochs", "40", *TRAIN)
    app.manage("train", "--epochs", "2", *TRAIN)  # job 2: waiting in Redis meanwhile
    first, second = (job["pk"] for job in jobs(app))
    # A worker starting on a loaded machine (torch and Django to import) can take a minute.
    wait_for(lambda: job_status(app, first) == "running", 180, "the first job to start")

    stop_redis()
    # Train pressed while the queue is down: the job fails with the reason at once, and the
    # command says so and exits non-zero.
    pressed = app.manage("train", "--epochs", "3", *TRAIN, check=False)
    assert pressed.returncode != 0 and "task queue is unreachable" in pressed.stderr
    third = jobs(app)[-1]
    assert third["status"] == "failed" and "task queue is unreachable" in third["error"]
    start_redis()

    def all_finished():
        return all(job["status"] not in ("queued", "running") for job in jobs(app))

    wait_for(all_finished, 300, "every job to finish")
    assert [job["status"] for job in jobs(app)] == ["succeeded", "succeeded", "failed"], (
        jobs(app),
        app.worker_log()[-3000:],
    )
    assert versions(app) == 2


# --- the database connection dropped during a job -----------------------------------------


def terminate_other_connections(database_url):
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def test_a_job_whose_database_connection_is_dropped_still_ends(app, tmp_path):
    database_url = app.env["DATABASE_URL"]
    if not database_url.startswith("postgres"):
        pytest.skip("dropping a connection from the server side needs PostgreSQL")
    app.manage("import_faces", write_people(tmp_path / "people", people=2, per_person=4))
    app.start_worker()
    app.manage("train", "--epochs", "10", *TRAIN)
    (job,) = jobs(app)

    def has_run_an_epoch():
        return "epoch" in shell(
            app, "from training.models import TrainingJob as J; print(J.objects.get().history)"
        )

    wait_for(has_run_an_epoch, 120, "the first epoch")
    assert terminate_other_connections(database_url) >= 1
    time.sleep(2)
    terminate_other_connections(database_url)

    wait_for(lambda: job_status(app, job["pk"]) not in ("queued", "running"), 300, "the job")
    (job,) = jobs(app)
    assert job["status"] == "succeeded", (job, app.worker_log()[-3000:])
    assert versions(app) == 1
