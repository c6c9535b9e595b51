"""The checks behind /readyz, each returning {"ok": bool, "detail": str}."""

import uuid

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "reachable"


def check_broker():
    from faceweb.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return conn.as_uri()


def check_storage():
    name = default_storage.save(f"readyz/{uuid.uuid4().hex}", ContentFile(b"ok"))
    default_storage.delete(name)
    return "writable"


def check_model():
    from training.services import active_version

    version = active_version()
    if version is None:
        raise LookupError("no model version is active yet")
    if not version.artifact.storage.exists(version.artifact.name):
        raise LookupError(f"model {version} file is missing")
    return f"model {version} active"


CHECKS = {
    "database": check_database,
    "broker": check_broker,
    "storage": check_storage,
    "model": check_model,
}


def check_all():
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = {"ok": True, "detail": check()}
        except Exception as exc:  # a probe reports every failure instead of raising
            results[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
    return results
