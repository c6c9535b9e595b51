"""faceweb run the way a team deploys it: gunicorn, a training worker and a default worker
on Redis, the database (PostgreSQL when the suite runs on it), shared storage; a tiny model
is trained and used entirely through the API."""

import socket
import time

import pytest
import requests

from tests.images import encode, group_photo, jpeg_bytes

pytestmark = pytest.mark.integration
PASSWORD = "a long and unguessable admin password"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass  # not listening yet, or still starting its workers
        time.sleep(0.3)
    raise AssertionError(f"{url} did not come up")


@pytest.fixture
def deployment(app):
    app.env["FACEWEB_ADMIN_PASSWORD"] = PASSWORD
    app.manage("ensure_admin")
    token = app.manage("drf_create_token", "admin").stdout.split()[2]
    port = free_port()
    app.start_web(port)
    app.start_worker("-Q", "training", "--max-tasks-per-child", "1")
    app.start_worker("-Q", "default")
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base + "/healthz")
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    return base + "/api/v1", session, app


def test_a_team_deployment_trains_and_identifies_through_the_api(deployment):
    api, http, app = deployment
    for person in range(3):
        identity = http.post(f"{api}/identities/", json={"name": f"Person {person}"}).json()
        files = [("images", (f"{i}.jpg", jpeg_bytes(person, i), "image/jpeg")) for i in range(5)]
        uploaded = http.post(f"{api}/identities/{identity['id']}/images/", files=files)
        assert uploaded.status_code == 201, uploaded.text

    params = {"epochs": 3, "batch_size": 8}
    job = http.post(f"{api}/training-jobs/", json=params).json()
    deadline = time.monotonic() + 240
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(1)
        job = http.get(f"{api}/training-jobs/{job['id']}/").json()
    assert job["status"] == "succeeded", (job, app.worker_log()[-3000:])
    assert len(job["history"]) == 1  # the default class-means head: one pass

    photo = encode(group_photo([0, 2]))
    response = http.post(
        f"{api}/identify/",
        files={"image": ("group.jpg", photo, "image/jpeg")},
        data={"strictness": "lenient"},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["model_version"] == job["model_version"]
    assert len(result["faces"]) == 2
    assert all(len(face["box"]) == 4 for face in result["faces"])

    ready = requests.get(api.replace("/api/v1", "/readyz"), timeout=10).json()
    assert ready["ready"] and ready["checks"]["model"]["ok"], ready
