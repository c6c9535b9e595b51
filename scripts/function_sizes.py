"""Print the size of faceweb's functions: median, 90th percentile, the five longest.

    python scripts/function_sizes.py [--root DIR] [--top N]

Counts every function and method (nested ones too) in the project's own code: the
packages, bench/, scripts/ and manage.py; tests and migrations left out. A function's size
is its lines from `def` to its last line, docstring and comments included, decorators not.
Also names the modules over 800 lines (STYLE.md's limit).
"""

import argparse
import ast
import math
import statistics
from pathlib import Path

SOURCES = (
    "faceweb",
    "accounts",
    "api",
    "identities",
    "imports",
    "training",
    "bench",
    "scripts",
    "manage.py",
)
MODULE_LIMIT = 800


def source_files(root):
    for source in SOURCES:
        path = root / source
        files = [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))
        for file in files:
            parts = file.relative_to(root).parts
            if file.is_file() and "migrations" not in parts and "tests" not in parts:
                yield file


def function_sizes(root):
    """[(lines, "path:line name")] of every function under root."""
    sizes = []
    for file in source_files(root):
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                where = f"{file.relative_to(root)}:{node.lineno} {node.name}"
                sizes.append((node.end_lineno - node.lineno + 1, where))
    return sizes


def long_modules(root):
    """[(lines, path)] of the modules over MODULE_LIMIT lines, longest first."""
    lines = [(len(f.read_text(encoding="utf-8").splitlines()), f) for f in source_files(root)]
    return sorted(
        ((n, str(f.relative_to(root))) for n, f in lines if n > MODULE_LIMIT), reverse=True
    )


def percentile(values, fraction):
    """Nearest-rank percentile of sorted values."""
    return values[max(0, math.ceil(fraction * len(values)) - 1)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--top", type=int, default=5, help="how many of the longest to list")
    args = parser.parse_args(argv)
    sizes = sorted(function_sizes(args.root), reverse=True)
    lengths = sorted(size for size, _ in sizes)
    print(
        f"functions: {len(lengths)}, median: {statistics.median(lengths):g} lines, "
        f"p90: {percentile(lengths, 0.9)} lines"
    )
    for size, where in sizes[: args.top]:
        print(f"  {size:4d}  {where}")
    modules = long_modules(args.root)
    print(f"modules over {MODULE_LIMIT} lines: {len(modules)}")
    for size, path in modules:
        print(f"  {size:4d}  {path}")


if __name__ == "__main__":
    main()
