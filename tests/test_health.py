import pytest

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_part_and_is_ready_before_the_first_model(client):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200 and body["ready"] is True
    assert {name for name, check in body["checks"].items() if check["ok"]} == {
        "database", "broker", "storage"
    }  # fmt: skip
    assert body["checks"]["model"] == {
        "ok": False, "detail": "LookupError: no model version is active yet"
    }  # fmt: skip


def test_readyz_is_503_when_the_broker_is_unreachable(client, settings):
    from faceweb.celery import app

    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


def deployed_env():
    """deploy.env.example's variables, as the container has them."""
    from pathlib import Path

    lines = (Path(__file__).parent.parent / "deploy.env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.mark.parametrize("probe", ["/healthz", "/readyz"])
def test_the_containers_own_health_check_passes_with_the_documented_settings(
    client, settings, probe
):
    env = deployed_env()
    settings.ALLOWED_HOSTS = env["DJANGO_ALLOWED_HOSTS"].split(",")
    settings.SECURE_SSL_REDIRECT = env["FACEWEB_HTTPS"] == "true"
    # What the Dockerfile's HEALTHCHECK and compose's healthcheck call, over plain HTTP.
    response = client.get(probe, HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200, response.content
    # Any other page still insists on a listed host.
    assert client.get("/login/", HTTP_HOST="127.0.0.1:8000").status_code == 400


def test_readyz_tells_anonymous_callers_no_internal_address(client):
    from faceweb.celery import app

    ok = client.get("/readyz").json()["checks"]["broker"]
    assert ok == {"ok": True, "detail": "reachable"}
    original = app.conf.broker_url
    app.conf.broker_url = "redis://10.9.8.7:1/0"
    try:
        failed = client.get("/readyz").content.decode()
    finally:
        app.conf.broker_url = original
    assert "10.9.8.7" not in failed and "redis://" not in failed
