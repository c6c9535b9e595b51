"""Helpers that run faceweb the way a user does: manage.py commands and a real Celery worker."""

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("FACEWEB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def reachable(url):
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname, parsed.port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def redis_url():
    if not reachable(REDIS_URL):
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {REDIS_URL}; .ci/run should have started it")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


@pytest.fixture
def database_url(tmp_path):
    """A fresh database for the processes under test: PostgreSQL when the suite runs on it."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'it.sqlite3'}"
        return
    import psycopg

    name = f"faceweb_it_{uuid.uuid4().hex[:10]}"
    admin_url = urlparse(url)._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield urlparse(url)._replace(path=f"/{name}").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def app_env(tmp_path, redis_url, database_url):
    env = os.environ.copy()
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(
        FACEWEB_DATA_DIR=str(tmp_path / "data"),
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=redis_url,
        FACEWEB_PRETRAINED="none",
        PYTHONUNBUFFERED="1",
    )
    return env


class App:
    def __init__(self, env, tmp_path):
        self.env = env
        self.tmp_path = tmp_path
        self.processes = []

    def manage(self, *args, timeout=120, check=True):
        result = subprocess.run(
            [sys.executable, "manage.py", *map(str, args)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {args} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def identify(self, *photos):
        return [json.loads(line) for line in self.manage("identify", *photos).stdout.splitlines()]

    def start_web(self, port, workers=2):
        """gunicorn serving the app on loopback, as a deployment runs it."""
        return self._start(
            "web",
            [sys.executable, "-m", "gunicorn", "faceweb.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--timeout", "120"],
        )  # fmt: skip

    def _start(self, name, command):
        with open(self.tmp_path / f"{name}-{len(self.processes)}.log", "w") as log:
            process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        return process

    def start_worker(self, *extra):
        return self._start(
            "worker",
            [sys.executable, "-m", "celery", "-A", "faceweb", "worker", "--loglevel=INFO",
             "--concurrency=1", f"--hostname=test-{uuid.uuid4().hex[:6]}@%h", *extra],
        )  # fmt: skip

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    def worker_log(self):
        return "\n".join(p.read_text() for p in sorted(self.tmp_path.glob("*.log")))


@pytest.fixture
def app(app_env, tmp_path):
    running = App(app_env, tmp_path)
    running.manage("migrate", "--no-input")
    yield running
    running.stop()
