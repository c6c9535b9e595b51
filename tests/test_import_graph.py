"""No two of the project's modules import each other, directly or round a loop.

An import inside a function counts as much as one at the top: it only postpones the
"partially initialised module" error to the first call (see scripts/import_graph.py).
"""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts/import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


graph = load_import_graph()


def test_the_projects_modules_import_each_other_in_no_new_cycle():
    modules = graph.project_modules(ROOT)
    edges = graph.import_edges(ROOT, modules)
    report = "\n".join(graph.describe(modules, edges))
    found = graph.cycles(edges)
    assert found == [], (
        f"Import cycle(s) between the project's modules:\n{report}\nMove the code that both "
        "modules need into a third one, or declare a Celery task beside the code that sends it."
    )


def test_the_graph_holds_the_interface_other_apps_use():
    edges = graph.import_edges(ROOT)
    pairs = {(edge.source, edge.target) for edge in edges}
    assert ("identities.uploads", "training.services") in pairs
    assert ("training.services", "training.jobs") in pairs


def write(root, path, text):
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text)


def test_an_import_inside_a_function_that_closes_a_loop_is_a_cycle(tmp_path):
    write(tmp_path, "training/__init__.py", "")
    write(tmp_path, "training/jobs.py", "from .services import start\n")
    write(tmp_path, "training/services.py", "def start():\n    from . import tasks\n")
    write(tmp_path, "training/tasks.py", "from training.jobs import run\n")
    write(tmp_path, "training/migrations/0001_initial.py", "from training import jobs\n")
    cycles = graph.cycles(graph.import_edges(tmp_path))
    assert cycles == [["training.jobs", "training.services", "training.tasks"]]


def test_imports_of_names_and_of_other_packages_are_not_edges_to_themselves(tmp_path):
    write(tmp_path, "imports/__init__.py", "")
    write(tmp_path, "imports/services.py", "import os\nfrom django.db import models\n")
    write(tmp_path, "imports/views.py", "from . import services\nfrom .services import x\n")
    edges = graph.import_edges(tmp_path)
    assert {(e.source, e.target) for e in edges} == {("imports.views", "imports.services")}
    assert graph.cycles(edges) == []
