"""Print the import graph of faceweb's own modules: its size and every cycle in it.

    python scripts/import_graph.py [--root DIR] [--edges]

Nodes are the modules of the installed packages (faceweb, accounts, api, identities,
imports, training with training.ml), migrations left out. An edge is any `import` or
`from ... import` of another of those modules, **at module level or inside a function**:
an import moved into a function still runs, and still ties the two modules together; it
only hides a cycle from Python until the function is called (that is how the cycles this
script was written to catch survived). Exits 1 when there is a cycle.

Read by tests/test_import_graph.py, which fails when a cycle appears.
"""

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("faceweb", "accounts", "api", "identities", "imports", "training")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: str  # the importing file, relative to the root
    line: int
    in_function: bool

    def __str__(self):
        where = "in a function" if self.in_function else "module level"
        return f"{self.source} -> {self.target}  ({self.path}:{self.line}, {where})"


def project_modules(root):
    """{dotted module name: file path} of the packages' modules, migrations left out."""
    modules = {}
    for package in PACKAGES:
        if not (root / package).is_dir():
            continue
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if "migrations" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def import_edges(root, modules=None):
    """Every Edge between project modules, in file and line order."""
    modules = project_modules(root) if modules is None else modules
    edges = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, in_function in _imports(tree):
            for target in _targets(node, name, is_package, modules):
                if target is not None and target != name:
                    relative = str(path.relative_to(root))
                    edge = Edge(name, target, relative, node.lineno, in_function)
                    edges.setdefault((name, target, node.lineno), edge)
    return sorted(edges.values(), key=lambda edge: (edge.path, edge.line, edge.target))


def _imports(tree):
    """(Import or ImportFrom node, whether it sits inside a function) for the whole tree."""
    stack = [(tree, False)]
    while stack:
        node, in_function = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, in_function
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            stack.append((child, inside))


def _targets(node, module, is_package, modules):
    if isinstance(node, ast.Import):
        return [_longest_known(alias.name, modules) for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    targets = []
    for alias in node.names:
        # `from training import services` imports the module training.services.
        submodule = f"{base}.{alias.name}" if base else alias.name
        targets.append(submodule if submodule in modules else _longest_known(base, modules))
    return targets


def _longest_known(dotted, modules):
    parts = dotted.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def cycles(edges):
    """The import cycles: [[module, ...]] for each group of modules that import each other
    (strongly connected components of two or more modules, or one importing itself)."""
    graph = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    return [sorted(group) for group in _strongly_connected(graph) if len(group) > 1]


def _strongly_connected(graph):
    """Tarjan's algorithm, without recursion."""
    index, low, on_stack, stack, groups = {}, {}, set(), [], []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    groups.append(group)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def describe(modules, edges):
    """The report printed by this script, as lines."""
    pairs = {(edge.source, edge.target) for edge in edges}
    at_top = {(e.source, e.target) for e in edges if not e.in_function}
    found = cycles(edges)
    lines = [
        f"modules: {len(modules)}, "
        f"edges: {len(pairs)} ({len(at_top)} with a module-level import, "
        f"{len(pairs - at_top)} only inside functions), cycles: {len(found)}"
    ]
    for number, group in enumerate(found, 1):
        members = set(group)
        lines.append(f"cycle {number}: {', '.join(group)}")
        lines += [f"    {e}" for e in edges if e.source in members and e.target in members]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--edges", action="store_true", help="also list every edge")
    args = parser.parse_args(argv)
    modules = project_modules(args.root)
    edges = import_edges(args.root, modules)
    print("\n".join(describe(modules, edges)))
    if args.edges:
        print("\n".join(str(edge) for edge in edges))
    return 1 if cycles(edges) else 0


if __name__ == "__main__":
    sys.exit(main())
