import re

from django.urls import reverse
from rest_framework.test import APIClient


def test_a_token_is_enough_to_use_the_api(api):
    response = api("viewer").get(reverse("api:prediction-list"))
    assert response.status_code == 200


def test_a_logged_in_browser_session_works_too(client, cast):
    client.force_login(cast["editor"])
    assert client.get(reverse("api:identity-list")).status_code == 200


def test_a_revoked_token_is_refused_with_401(api, cast):
    client = api("viewer")
    cast["viewer"].auth_token.delete()
    response = client.get(reverse("api:prediction-list"))
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "authentication_failed", "message": "Invalid token.", "details": {}}
    }


def test_an_inactive_users_token_is_refused(api, cast):
    cast["editor"].is_active = False
    cast["editor"].save()
    assert api("editor").get(reverse("api:identity-list")).status_code == 401


def test_an_unknown_endpoint_is_a_json_404(api):
    response = api("viewer").get("/api/v1/people/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_schema_is_openapi_3_and_lists_every_endpoint(api):
    response = api("outsider").get(reverse("api:schema"), {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/v1/identities/",
        "/api/v1/identities/{identity_id}/images/",
        "/api/v1/training-jobs/{id}/cancel/",
        "/api/v1/model-versions/{id}/activate/",
        "/api/v1/identify/",
        "/api/v1/predictions/",
    } <= set(schema["paths"])


def test_the_schema_needs_credentials(api):
    assert api().get(reverse("api:schema")).status_code == 401


def test_the_docs_page_works_without_any_outside_script(client, cast):
    client.force_login(cast["viewer"])
    response = client.get(reverse("api:docs"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page and reverse("api:schema") in page
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', page)
    assert scripts and all(src.startswith("/static/") for src in scripts)


def test_the_docs_page_sends_strangers_to_log_in(client):
    response = client.get(reverse("api:docs"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_session_writes_need_a_csrf_token(cast):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(cast["editor"])
    response = client.post(reverse("api:identity-list"), {"name": "Grace"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]
