"""POST /api/v1/identify under gunicorn with 1, 4 and 16 concurrent clients, on loopback.

    python bench/load_identify.py [--clients 1 4 16] [--requests 700] [--workers 2]
                                  [--dataset DIR] [--data-dir DIR]

Starts gunicorn on 127.0.0.1 (a free port) with the project's settings, a SQLite database
and a data folder of its own (a temporary one unless --data-dir is given). When no model is
active there it enrols people (from --dataset, a folder per person, or generated faces) and
trains a small model first. Each client level sends --requests requests (one 640x480 JPEG
with one face, a new Prediction each) from that many threads and prints requests/second,
p50/p95/p99 latency and the error count (anything but 200, or a timeout).

In the same run it measures:
- the same identify path (validate, detect, classify, record the prediction) in a tight
  in-process loop, one process per CPU core, before and after the load (the higher counts):
  the most this machine does without HTTP; http_to_inprocess_ratio is the throughput at
  the largest client level over that;
- the resident memory of each gunicorn worker at about request 200 and request 2,000
  (flat within 10%?), against a bare process that imports torch and runs one ResNet18
  forward (each worker within 1.3x?).

The last line is `clients=<n> requests=<n> errors=<n> rps=<x> p95_ms=<x>
http_to_inprocess_ratio=<x>` for the largest client level. Targets on a 2-core machine:
zero errors at 16 clients, ratio >= 0.7, memory as above.
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PHOTO_SIZE = (640, 480)
MEMORY_MARKS = (200, 2000)


def main():
    args = parse_args()
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="faceweb-load-")).resolve()
    env = bench_env(data_dir, args)
    os.environ.update(env)
    try:
        token = prepare(args)
        photo = test_photo(args.dataset)
        before = measure_inprocess(env, photo, args.inprocess_seconds)
        bare_rss = bare_forward_rss(env)
        with gunicorn(env, args) as (port, master):
            results, memory = drive(port, master, token, photo, args)
        # Measured on both sides of the load and the better one kept: on a shared machine a
        # single measurement taken in a quiet moment or a busy one would flatter or hurt.
        inprocess_rps = max(before, measure_inprocess(env, photo, args.inprocess_seconds))
    finally:
        if not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
    report(args, results, memory, bare_rss, inprocess_rps)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=700, help="per client level")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="FACEWEB_TORCH_THREADS of the web workers")  # fmt: skip
    parser.add_argument("--dataset", type=Path, help="a folder per person to enrol and train on")
    parser.add_argument("--data-dir", type=Path, help="keep the database and files here")
    parser.add_argument("--epochs", type=int, default=4, help="of the small model it trains")
    parser.add_argument("--inprocess-seconds", type=float, default=15)
    parser.add_argument("--max-seconds", type=float, default=240, help="per client level")
    return parser.parse_args()


def bench_env(data_dir, args):
    return {
        "DJANGO_SETTINGS_MODULE": "faceweb.settings",
        "FACEWEB_DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'faceweb.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://localhost/",
        "FACEWEB_PRETRAINED": os.environ.get("FACEWEB_PRETRAINED", "none"),
        "FACEWEB_TORCH_THREADS": str(args.torch_threads),
        # The per-user throttle would turn a load test into a test of the throttle.
        "FACEWEB_IDENTIFY_RATE": "1000000/min",
        "CACHE_URL": "",
        "LOG_LEVEL": "WARNING",
    }


# --- setting up: database, people, a model, a token --------------------------------------


def prepare(args):
    """Migrate, enrol and train when needed; returns an API token of a viewer."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--no-input", verbosity=0)
    from training import services

    if services.active_version() is None:
        train_small_model(args)
    return bench_token()


def train_small_model(args):
    from django.core.management import call_command

    from training import services
    from training.jobs import run_job
    from training.models import TrainingJob

    folder = args.dataset
    if folder is None:
        from tests.images import write_people

        folder = write_people(Path(os.environ["FACEWEB_DATA_DIR"]) / "people", 4, 8)
    call_command("import_faces", str(folder), verbosity=0)
    started = time.perf_counter()
    job = TrainingJob.objects.create(params=services.default_params(epochs=args.epochs))
    if run_job(job.pk) != TrainingJob.Status.SUCCEEDED:
        job.refresh_from_db()
        raise SystemExit(f"training the bench model failed: {job.error}")
    print(f"trained a model: {args.epochs} epochs in {time.perf_counter() - started:.0f}s")


def bench_token():
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from accounts.roles import VIEWER, set_role

    user, _ = get_user_model().objects.get_or_create(username="load-bench")
    set_role(user, VIEWER)
    return Token.objects.get_or_create(user=user)[0].key


def test_photo(dataset=None):
    """A 640x480 JPEG with one face in it: the first photo of the dataset's first person,
    or a generated face (which HOG does not find: the CNN looks again, ~7x the time)."""
    import io

    from PIL import Image

    from tests.images import person_image

    if dataset is None:
        face = person_image(1, 3, size=220)
    else:
        first = sorted(path for path in Path(dataset).iterdir() if path.is_dir())[0]
        face = Image.open(sorted(first.iterdir())[0]).convert("RGB").resize((220, 220))
    photo = Image.new("RGB", PHOTO_SIZE, (90, 110, 130))
    photo.paste(face, (210, 130))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


# --- the in-process baseline and the bare process -----------------------------------------

INPROCESS = """
import json, sys, time
import django
django.setup()
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from identities.views import identify_upload
photo, seconds = open(sys.argv[1], "rb").read(), float(sys.argv[2])
user = get_user_model().objects.get(username="load-bench")
def once():
    identify_upload(SimpleUploadedFile("p.jpg", photo, "image/jpeg"), user)
for _ in range(3):
    once()
count, started = 0, time.perf_counter()
while time.perf_counter() - started < seconds:
    once()
    count += 1
print(json.dumps({"count": count, "seconds": time.perf_counter() - started}))
"""


def measure_inprocess(env, photo, seconds):
    """Identifications per second of the same path without HTTP, one process per core."""
    with tempfile.NamedTemporaryFile(suffix=".jpg") as handle:
        handle.write(photo)
        handle.flush()
        command = [sys.executable, "-c", INPROCESS, handle.name, str(seconds)]
        processes = [
            subprocess.Popen(command, cwd=ROOT, env=os.environ | env, stdout=subprocess.PIPE)
            for _ in range(os.cpu_count() or 1)
        ]
        runs = [json.loads(p.communicate()[0]) for p in processes]
    rps = sum(run["count"] / run["seconds"] for run in runs)
    print(f"inprocess processes={len(runs)} rps={rps:.1f}")
    return rps


BARE = """
import torch
from torchvision.models import resnet18
torch.set_num_threads({threads})
model = resnet18(weights=None).eval()
with torch.inference_mode():
    model(torch.randn(1, 3, 224, 224))
print(open("/proc/self/status").read())
"""


def bare_forward_rss(env):
    code = BARE.format(threads=env["FACEWEB_TORCH_THREADS"])
    status = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    return rss_from_status(status)


def rss_from_status(status):
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def rss(pid):
    with open(f"/proc/{pid}/status") as status:
        return rss_from_status(status.read())


def worker_pids(master):
    out = subprocess.run(["pgrep", "-P", str(master.pid)], capture_output=True, text=True)
    return sorted(int(pid) for pid in out.stdout.split())


# --- gunicorn and the clients -------------------------------------------------------------


class gunicorn:  # noqa: N801  (used like a function: `with gunicorn(...) as (port, master)`)
    def __init__(self, env, args):
        self.env, self.args = os.environ | env, args

    def __enter__(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        command = [sys.executable, "-m", "gunicorn", "faceweb.wsgi",
                   "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.args.workers),
                   "--threads", str(self.args.threads), "--timeout", "120"]  # fmt: skip
        log = Path(self.env["FACEWEB_DATA_DIR"]) / "gunicorn.log"
        with open(log, "w") as output:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT
            )
        wait_until_up(self.port)
        return self.port, self.process

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(30)


def wait_until_up(port, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("gunicorn did not come up")


def multipart(photo):
    boundary = "faceweb-load-bench"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + photo
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


class Load:
    """Counts requests across levels and samples worker memory at the marks."""

    def __init__(self, port, master, token, photo):
        self.port, self.master = port, master
        self.body, content_type = multipart(photo)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": content_type}
        self.sent = 0
        self.lock = threading.Lock()
        self.memory = {}

    def next_request(self, limit, deadline):
        with self.lock:
            if self.level_sent >= limit or time.monotonic() > deadline:
                return None
            self.level_sent += 1
            self.sent += 1
            return self.sent

    def one(self):
        """(latency in ms, ok) of one identify request."""
        started = time.perf_counter()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            connection.request("POST", "/api/v1/identify/", self.body, self.headers)
            response = connection.getresponse()
            ok = response.status == 200 and b'"faces"' in response.read()
            connection.close()
        except OSError:
            ok = False
        return (time.perf_counter() - started) * 1000, ok

    def sample_memory(self, number):
        for mark in MEMORY_MARKS:
            if number == mark:
                self.memory[mark] = {pid: rss(pid) for pid in worker_pids(self.master)}

    def level(self, clients, count, max_seconds):
        self.level_sent = 0
        deadline = time.monotonic() + max_seconds
        latencies, errors = [], []

        def client():
            while (number := self.next_request(count, deadline)) is not None:
                latency, ok = self.one()
                latencies.append(latency)
                if not ok:
                    errors.append(number)
                self.sample_memory(number)

        threads = [threading.Thread(target=client) for _ in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        return {
            "clients": clients,
            "requests": len(latencies),
            "errors": len(errors),
            "rps": len(latencies) / seconds,
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99),
        }


def percentile(values, pct):
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def drive(port, master, token, photo, args):
    load = Load(port, master, token, photo)
    # Concurrent warm-up, so that every worker has loaded the model before the clock starts.
    warm_up = [threading.Thread(target=load.one) for _ in range(3 * args.workers)]
    for thread in warm_up:
        thread.start()
    for thread in warm_up:
        thread.join()
    results = []
    for clients in args.clients:
        result = load.level(clients, args.requests, args.max_seconds)
        results.append(result)
        print(
            f"level clients={clients} requests={result['requests']} errors={result['errors']} "
            f"rps={result['rps']:.1f} p50_ms={result['p50_ms']:.0f} "
            f"p95_ms={result['p95_ms']:.0f} p99_ms={result['p99_ms']:.0f}",
            flush=True,
        )
    return results, load.memory


def report(args, results, memory, bare_rss, inprocess_rps):
    mib = 1024 * 1024
    print(f"gunicorn workers={args.workers} threads={args.threads} "
          f"torch_threads={args.torch_threads}")  # fmt: skip
    print(f"bare_torch_resnet18_forward_rss_mib={bare_rss / mib:.0f}")
    first, last = (memory.get(mark) for mark in MEMORY_MARKS)
    if first and last:
        for pid in sorted(first):
            before, after = first[pid], last.get(pid, 0)
            growth = after / before - 1
            print(
                f"worker pid={pid} rss_mib_at_{MEMORY_MARKS[0]}={before / mib:.0f} "
                f"rss_mib_at_{MEMORY_MARKS[1]}={after / mib:.0f} growth={growth:+.1%} "
                f"flat_within_10%={'yes' if abs(growth) <= 0.10 else 'NO'} "
                f"to_bare={after / bare_rss:.2f} "
                f"within_1.3x={'yes' if after <= 1.3 * bare_rss else 'NO'}"
            )
    else:
        print(f"memory: fewer than {MEMORY_MARKS[1]} requests were sent; use --requests")
    top = results[-1]
    ratio = top["rps"] / inprocess_rps
    print(
        f"clients={top['clients']} requests={top['requests']} errors={top['errors']} "
        f"rps={top['rps']:.1f} p95_ms={top['p95_ms']:.0f} http_to_inprocess_ratio={ratio:.2f}"
    )


if __name__ == "__main__":
    main()
