"""The API against its own OpenAPI schema, from outside, as a generated client would use it:
schemathesis sends valid and invalid requests with every role's token to gunicorn, and no
answer may be a 5xx, have a status code, content type, header or body the schema does not
describe."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from .test_deployment import free_port, wait_until_up

pytestmark = pytest.mark.integration

# Anonymous callers, a user with no role, then each role: the ones that change least go
# first, as the admin's requests delete and merge people.
ROLES_IN_ORDER = ("anonymous", "none", "viewer", "editor", "trainer", "admin")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
# Per operation and phase; with the coverage phase's own cases about 1,300 requests a role,
# a run of about 15 seconds each on two cores.
MAX_EXAMPLES = 5
# Ids that exist after tests.integration.seeded.seed() on an empty database (each kind
# starts at 1), offered often enough that most requests reach real objects.
CONFIG = """
[dictionaries.seeded]
values = [1, 2, 3]

[dictionaries.faces]
values = [0, 1]

[parameters]
"path.id" = { dictionary = "seeded", probability = 0.6 }
"path.identity_id" = { dictionary = "seeded", probability = 0.6 }
"path.index" = { dictionary = "faces", probability = 0.6 }
"body.into" = { dictionary = "seeded", probability = 0.5 }
"body.to" = { dictionary = "seeded", probability = 0.5 }
"""


@pytest.fixture
def live_api(app):
    """gunicorn over a seeded database; (base URL, the seed's JSON)."""
    output = app.manage(
        "shell", "--no-imports", "-c", "from tests.integration.seeded import main; main()"
    )
    seeded = json.loads(output.stdout.strip().splitlines()[-1])
    port = free_port()
    app.start_web(port)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base + "/healthz")
    return base, seeded


def run_schemathesis(base, schema, token, folder):
    """One `st run` with this token (None: none); returns its JSON report and output."""
    folder.mkdir()
    (folder / "schema.json").write_text(schema)
    (folder / "schemathesis.toml").write_text(CONFIG)
    st = Path(sys.executable).with_name("st")
    credentials = ["--header", f"Authorization: Token {token}"] if token else []
    command = [
        str(st), "--config-file", str(folder / "schemathesis.toml"), "run",
        str(folder / "schema.json"), "--url", base, *credentials,
        "--checks", ",".join(CHECKS), "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(MAX_EXAMPLES), "--seed", "0", "--workers", "1", "--no-shrink",
        "--report", "json", "--report-json-path", str(folder / "report.json"),
    ]  # fmt: skip
    # Run in the folder: schemathesis keeps a cache of what it found where it runs.
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300)
    report = json.loads((folder / "report.json").read_text())
    return report, result.stdout + result.stderr


def test_every_answer_matches_the_schema_and_none_is_a_server_error_for_every_role(
    live_api, tmp_path
):
    base, seeded = live_api
    tokens = seeded["tokens"]
    schema = requests.get(
        f"{base}/api/v1/schema/?format=json", headers={"Authorization": f"Token {tokens['admin']}"}
    ).text
    failed, requests_sent = {}, 0
    for role in ROLES_IN_ORDER:
        report, output = run_schemathesis(base, schema, tokens.get(role), tmp_path / role)
        assert report["operations"]["tested"] == report["operations"]["selected"] > 20, output
        requests_sent += report["test_cases"]["generated"]
        if report["failures"] or report["errors"]:
            failed[role] = output[output.find("FAILURES") :][:6000]
    print(f"schemathesis: roles={len(ROLES_IN_ORDER)} requests={requests_sent}")
    assert not failed, "\n".join(f"--- as {role}:\n{text}" for role, text in failed.items())
