"""Every hostile file and zip of the test suite through faceweb's upload doors, live.

    python bench/hostile_inputs.py [--data-dir DIR]

Starts gunicorn (2 workers) and a default-queue Celery worker on a SQLite database, the
filesystem broker and a data folder of their own (a temporary one unless --data-dir), seeds
them (tests/integration/seeded.py: a user per role, three people, a small trained model),
then sends:

- every bad, odd, polyglot and oddly named photo of tests/identities/test_hostile_input.py,
  and one over the upload size limit, through the four doors a photo comes in by: web
  enrolment (a person's page), API enrolment, web identify and API identify; a batch with
  a 30000x10 sliver in the middle through both enrolment doors;
- every hostile or odd zip of tests/imports/test_hostile_zips.py (tests/imports/zips.py,
  hostile_zips) and a zip holding each bad photo, through the import page and the API. A
  zip the API previews is imported by the worker (each bad member skipped with its reason,
  the import finished); the page's copy is discarded.

After each request it compares the database and the data folder with before: a refused
input must leave no row and no file; an accepted one only rows, and files that a row points
to. At the end no stored file may lack its row, no row its file, and the servers' temporary
folder must be empty. A request is handled when its answer is the expected one (the reason
on a refusal) and left nothing stray; an input is handled when every door handled it.

The last line: hostile_inputs=<distinct inputs> handled=<inputs> server_errors=<answers
that were a 5xx or none at all>.
"""

import argparse
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OVERSIZE_MESSAGE = "larger than the"


@dataclass
class Outcome:
    """What became of one input at every door."""

    name: str
    problems: list = field(default_factory=list)
    server_errors: int = 0
    requests: int = 0


def main():
    args = parse_args()
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="faceweb-hostile-")).resolve()
    env = bench_env(data_dir)
    os.environ.update(env)
    try:
        seeded = prepare()
        with servers(env, data_dir) as base:
            outcomes = send_everything(Doors(base, seeded), Ledger(data_dir))
    finally:
        if not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
    report(outcomes)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="keep the database and files here")
    return parser.parse_args()


def bench_env(data_dir):
    (data_dir / "tmp").mkdir(parents=True, exist_ok=True)
    return {
        "DJANGO_SETTINGS_MODULE": "faceweb.settings",
        "FACEWEB_DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'faceweb.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://localhost/",
        "FACEWEB_PRETRAINED": "none",
        # The throttle would turn this into a test of the throttle.
        "FACEWEB_IDENTIFY_RATE": "1000000/min",
        "CACHE_URL": "",
        "LOG_LEVEL": "WARNING",
        # Spooled uploads and unpacked zips land here, to be found if left behind.
        "TMPDIR": str(data_dir / "tmp"),
    }


def prepare():
    """Migrate and seed the bench's own database; returns the seed's tokens and ids."""
    import django

    django.setup()
    from django.core.management import call_command

    from tests.integration.seeded import seed

    call_command("migrate", "--no-input", verbosity=0)
    return seed()


@contextmanager
def servers(env, data_dir):
    """gunicorn and a default-queue worker on loopback; yields the base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    python = sys.executable
    commands = [
        [python, "-m", "gunicorn", "faceweb.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--timeout", "120"],
        [python, "-m", "celery", "-A", "faceweb", "worker", "-Q", "default",
         "--concurrency", "1", "--loglevel", "WARNING", "--hostname", "hostile@%h"],
    ]  # fmt: skip
    log = open(data_dir / "servers.log", "w")  # noqa: SIM115  (closed below)
    processes = [
        subprocess.Popen(c, cwd=ROOT, env=os.environ | env, stdout=log, stderr=log)
        for c in commands
    ]
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base + "/healthz")
        yield base
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def wait_until_up(url, seconds=60):
    from tests.integration.test_deployment import wait_until_up as wait

    wait(url, seconds)


# --- the inputs ---------------------------------------------------------------------------


def photo_inputs():
    """[(name, [(file name, bytes)], message of the refusal or None, doors, what the answer
    to an accepted input must also say)]."""
    from tests.identities.test_hostile_input import BAD_FILES, ODD_FILES, ODD_NAMES, POLYGLOTS
    from tests.images import jpeg_bytes

    every_door = ("web-enrol", "api-enrol", "web-identify", "api-identify")
    inputs = [
        (f"bad:{name}", [("holiday.jpg", data)], message, every_door, "")
        for name, (data, message) in BAD_FILES.items()
    ]
    inputs += [(f"odd:{name}", [(f"{name}.img", d[0])], None, every_door, "")
               for name, d in ODD_FILES.items()]  # fmt: skip
    inputs += [(f"polyglot:{name}", [("p.jpg", data)], None, every_door, "")
               for name, data in POLYGLOTS.items()]  # fmt: skip
    enrolment = ("web-enrol", "api-enrol")
    inputs += [(f"name:{name[:40]}", [(name, jpeg_bytes(1, 4 + n))], None, enrolment, "")
               for n, name in enumerate(ODD_NAMES)]  # fmt: skip
    oversized = b"\xff\xd8\xff\xe0" + os.urandom(16 * 1024 * 1024)
    inputs.append(("oversized-16MB", [("big.jpg", oversized)], OVERSIZE_MESSAGE, every_door, ""))
    batch = [(f"{i}.jpg", jpeg_bytes(2, 10 + i)) for i in range(4)]
    batch.insert(2, ("sliver.png", BAD_FILES["very-wide-sliver"][0]))
    # The four photos are stored; the sliver is refused with its reason.
    inputs.append(("batch-with-a-sliver", batch, None, enrolment, "too narrow to hold a face"))
    return inputs


def zip_inputs():
    """[(name, bytes, message of the refusal or None, a member the import must skip with
    its reason)]: the suite's zips, then a zip of each bad photo beside a good one."""
    from tests.identities.test_hostile_input import BAD_FILES
    from tests.images import jpeg_bytes
    from tests.imports.zips import hostile_zips, make_zip

    inputs = [
        (f"zip:{name}", data, message, None) for name, (data, message) in hostile_zips().items()
    ]
    for n, (name, (data, _)) in enumerate(BAD_FILES.items()):
        member = f"Zipped/{name}.jpg"
        archive = make_zip({member: data, "Zipped/ok.jpg": jpeg_bytes(3, 20 + n)})
        inputs.append((f"zip-of:{name}", archive, None, member))
    return inputs


# --- the doors ----------------------------------------------------------------------------


class Doors:
    """Sends files the ways a person or a program can; each returns (status, text)."""

    def __init__(self, base, seeded):
        import requests

        self.base = base
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Token {seeded['tokens']['editor']}"
        self.web = self.log_in("editor", seeded["password"])
        # One person per enrolment door: a photo the page stored would be a duplicate at the
        # API's door, and refused as one.
        self.web_person, self.api_person = (
            self.api.post(f"{base}/api/v1/identities/", json={"name": name}).json()
            for name in ("Hostile Page", "Hostile API")
        )

    def log_in(self, username, password):
        import requests

        session = requests.Session()
        page = session.get(f"{self.base}/login/").text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        answer = session.post(
            f"{self.base}/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token},
            allow_redirects=False,
        )
        if answer.status_code != 302:
            raise SystemExit(f"could not log in as {username}: {answer.status_code}")
        session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
        return session

    def post(self, session, path, **kwargs):
        answer = session.post(self.base + path, allow_redirects=False, timeout=180, **kwargs)
        return answer.status_code, answer.text, answer

    def web_enrol(self, files):
        sent = [("photos", (name, data, "image/jpeg")) for name, data in files]
        page = f"/people/{self.web_person['slug']}/"
        status, text, _ = self.post(self.web, page, files=sent)
        if status == 302:  # the outcome is on the person's page, as messages
            text = self.web.get(self.base + page, timeout=60).text
        return status, html.unescape(text)

    def api_enrol(self, files):
        sent = [("images", (name, data, "image/jpeg")) for name, data in files]
        status, text, _ = self.post(
            self.api, f"/api/v1/identities/{self.api_person['id']}/images/", files=sent
        )
        return status, text

    def web_identify(self, files):
        (name, data), *_ = files
        status, text, _ = self.post(
            self.web, "/identify/", files={"photo": (name, data, "image/jpeg")}
        )
        return status, html.unescape(text)

    def api_identify(self, files):
        (name, data), *_ = files
        return self.post(self.api, "/api/v1/identify/", files={"image": (name, data)})[:2]

    def web_import(self, data):
        sent = {"archive": ("people.zip", data, "application/zip")}
        status, text, answer = self.post(self.web, "/imports/", files=sent)
        return status, html.unescape(text), answer.headers.get("Location", "")

    def api_import(self, data):
        sent = {"archive": ("people.zip", data, "application/zip")}
        status, text, _ = self.post(self.api, "/api/v1/imports/", files=sent)
        return status, text


# door: (Doors method, statuses of an accepted photo, and what its answer says, the status
# of a refusal)
PHOTO_DOORS = {
    "web-enrol": ("web_enrol", (302,), " added.", 302),
    "api-enrol": ("api_enrol", (201,), '"created":[{', 400),
    "web-identify": ("web_identify", (302,), "", 200),
    "api-identify": ("api_identify", (200,), '"prediction_id"', 400),
}


# --- what changed -------------------------------------------------------------------------


class Ledger:
    """Rows and stored files, before and after each request."""

    def __init__(self, data_dir):
        from django.conf import settings

        self.media = Path(settings.MEDIA_ROOT)
        self.tmp = data_dir / "tmp"

    def snapshot(self):
        from identities.models import FaceImage, Identity, Prediction
        from imports.models import BulkImport, ImportFile

        models = (Identity, FaceImage, Prediction, BulkImport, ImportFile)
        counts = {model.__name__: model.objects.count() for model in models}
        files = {str(p.relative_to(self.media)) for p in self.media.rglob("*") if p.is_file()}
        return counts, files

    def stray(self, before, refused):
        """What a request left that it should not have: [problem]."""
        from identities.housekeeping import referenced_names

        (counts, files), (now_counts, now_files) = before, self.snapshot()
        if refused:
            changed = [k for k in counts if counts[k] != now_counts[k]]
            new = sorted(now_files - files)
            return [f"rows changed: {changed}"] * bool(changed) + [f"files: {new}"] * bool(new)
        unreferenced = sorted((now_files - files) - referenced_names())
        return [f"files no row points to: {unreferenced}"] * bool(unreferenced)

    def leftovers(self):
        """Problems that only show at the end: files without rows, rows without files,
        temporary files."""
        from identities.housekeeping import orphan_files, referenced_names

        problems = []
        missing = sorted(n for n in referenced_names() if not (self.media / n).is_file())
        if missing:
            problems.append(f"rows whose file is missing: {missing[:5]}")
        orphans = orphan_files(grace=timedelta(0))
        if orphans:
            problems.append(f"stored photos no row points to: {orphans[:5]}")
        temporary = sorted(str(p) for p in self.tmp.rglob("*") if p.is_file())
        if temporary:
            problems.append(f"temporary files left: {temporary[:5]}")
        return problems


# --- sending ------------------------------------------------------------------------------


def send_everything(doors, ledger):
    outcomes = [send_photo(doors, ledger, *spec) for spec in photo_inputs()]
    outcomes += [send_zip(doors, ledger, *spec) for spec in zip_inputs()]
    final = Outcome("(the end)")
    final.problems = ledger.leftovers()
    return [*outcomes, final]


def send_photo(doors, ledger, name, files, message, door_names, says):
    outcome = Outcome(name)
    for door in door_names:
        method, ok_statuses, ok_text, refused_status = PHOTO_DOORS[door]
        before = ledger.snapshot()
        status, text = call(outcome, getattr(doors, method), files)
        if status is None or status >= 500:
            outcome.problems.append(f"{door}: {status}")
            continue
        if message is None and (
            status not in ok_statuses or ok_text not in text or says not in text
        ):
            outcome.problems.append(f"{door}: {status}, expected {ok_statuses}: {text[:200]}")
        if message is not None and (status != refused_status or message not in text):
            outcome.problems.append(f"{door}: {status} without {message!r}: {text[:200]}")
        outcome.problems += [f"{door}: {p}" for p in ledger.stray(before, message is not None)]
    return outcome


def send_zip(doors, ledger, name, data, message, skipped_member):
    outcome = Outcome(name)
    before = ledger.snapshot()
    status, text, location = call(outcome, doors.web_import, data, extra=1)
    if message is not None:
        check_refusal(outcome, "web-import", status, text, message)
        outcome.problems += [f"web-import: {p}" for p in ledger.stray(before, True)]
    elif status != 302:
        outcome.problems.append(f"web-import: {status}, expected a preview: {text[:200]}")
    else:
        discard(doors, ledger, outcome, location)
    before = ledger.snapshot()
    status, text = call(outcome, doors.api_import, data)
    if message is not None:
        check_refusal(outcome, "api-import", status, text, message)
        outcome.problems += [f"api-import: {p}" for p in ledger.stray(before, True)]
    elif status != 201:
        outcome.problems.append(f"api-import: {status}, expected a preview: {text[:200]}")
    else:
        run_import(doors, outcome, json.loads(text)["id"], skipped_member)
        outcome.problems += [f"api-import: {p}" for p in ledger.stray(before, False)]
    return outcome


def call(outcome, method, payload, extra=0):
    """method(payload), counting requests and server errors; None as the status when the
    server gave no answer."""
    import requests

    outcome.requests += 1
    try:
        answer = method(payload)
    except requests.RequestException as exc:
        outcome.server_errors += 1
        return (None, str(exc)) + ("",) * extra
    if answer[0] >= 500:
        outcome.server_errors += 1
    return answer


def check_refusal(outcome, door, status, text, message):
    if status is None or status != 400 or message not in text:
        outcome.problems.append(f"{door}: {status} without {message!r}: {text[:300]}")


def discard(doors, ledger, outcome, location):
    """Throw the page's preview away: its row and its stored zip must go."""
    before = ledger.snapshot()
    status, _, _ = doors.post(doors.web, location.rstrip("/") + "/discard/")
    counts, files = ledger.snapshot()
    if status != 302 or counts["BulkImport"] != before[0]["BulkImport"] - 1:
        outcome.problems.append(f"web-import: discarding the preview answered {status}")
    if files - before[1]:
        outcome.problems.append(f"web-import: discarding left files {sorted(files - before[1])}")


def run_import(doors, outcome, import_id, skipped_member, seconds=300):
    """Confirm the API's preview and wait for the worker: it must finish, not fail, and
    list skipped_member (when given) with the reason it was left out."""
    base = f"{doors.base}/api/v1/imports/{import_id}/"
    status, text, _ = doors.post(doors.api, f"/api/v1/imports/{import_id}/confirm/")
    if status != 202:
        outcome.problems.append(f"api-import: confirming answered {status}: {text[:200]}")
        return
    deadline = time.monotonic() + seconds
    bulk = {}
    while time.monotonic() < deadline:
        bulk = doors.api.get(base, timeout=60).json()
        if bulk["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.5)
    if bulk.get("status") != "succeeded":
        outcome.problems.append(f"api-import: the import ended {bulk.get('status')}: {bulk}")
    reasons = {problem["path"]: problem["reason"] for problem in bulk.get("problems", [])}
    if skipped_member and not reasons.get(skipped_member):
        outcome.problems.append(f"api-import: {skipped_member} has no reason: {reasons}")


# --- the report ---------------------------------------------------------------------------


def report(outcomes):
    inputs = [o for o in outcomes if o.name != "(the end)"]
    for outcome in outcomes:
        for problem in outcome.problems:
            print(f"NOT HANDLED {outcome.name}: {problem}")
    sent = sum(o.requests for o in inputs)
    print(f"requests={sent} leftovers={len(outcomes[-1].problems)}")
    handled = sum(not o.problems for o in inputs) if not outcomes[-1].problems else 0
    errors = sum(o.server_errors for o in inputs)
    print(f"hostile_inputs={len(inputs)} handled={handled} server_errors={errors}")


if __name__ == "__main__":
    main()
