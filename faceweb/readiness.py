"""The checks behind /readyz, each returning {"ok": bool, "detail": str}."""

import logging
import uuid

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

log = logging.getLogger(__name__)


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "reachable"


def check_broker():
    from faceweb.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "reachable"


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
    """{name: {"ok", "detail"}}. Anyone may call the probe, so a failure's detail names only
    the kind of error: messages such as "Error 111 connecting to redis:6379" would tell the
    internal host names; they go to the log instead."""
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = {"ok": True, "detail": check()}
        except LookupError as exc:  # the model's state: no address in it
            results[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
        except Exception as exc:  # a probe reports every failure instead of raising
            log.warning("readiness check %s failed", name, exc_info=True)
            results[name] = {"ok": False, "detail": f"{type(exc).__name__}: unreachable"}
    return results
