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
