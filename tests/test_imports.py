"""The library's import graph has no cycles and points one way: a module imports only from
its own layer or the layers below (module-level and function-level imports alike)."""

import ast
import fnmatch
import sys
from pathlib import Path

import pytest
import torch

import clipadapt

ROOT = Path(clipadapt.__file__).parent
# lowest first; a module may import from its own layer and the layers before it. Patterns
# match module names (fnmatch), so a new file under methods/ or data/ needs no entry here.
LAYERS = [
    ["profiles", "quoted", "viz", "explorer"],
    ["core.files", "core.seeds", "core.pixels", "core.checkpoints", "core.distributed", "core.flops",
     "core.metrics", "core.losses"],
    ["core", "core.*"],
    ["data", "data.*"],
    ["methods", "methods.*"],
    ["tasks", "tasks.*"],
    ["training", "training.*"],
    ["experiments", "experiments.*"],
    ["chapter", "pretrain", "reproduce", "citations", "book", "kernels", "bench", "bench.*"],
]
PACKAGES = ("core", "data", "methods", "tasks", "training", "experiments", "bench")


def layer(module: str) -> int | None:
    """The first layer with a pattern that matches ``module``."""
    return next((i for i, pats in enumerate(LAYERS) if any(fnmatch.fnmatchcase(module, p) for p in pats)), None)


def modules():
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path) -> set[str]:
    """The clipadapt modules that module ``name`` imports (relative or absolute)."""
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    known = modules()
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("clipadapt"):
                target = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:
                full = ".".join(target + [alias.name])
                found.add(full if full in known else ".".join(target))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("clipadapt."):
                    found.add(alias.name.split(".", 1)[1])
    return {m for m in found if m in known and m not in ("", name)}


def test_every_module_has_a_layer():
    missing = [m for m in modules() if layer(m) is None and m != ""]
    assert not missing, f"give these modules a layer in tests/test_imports.py: {missing}"


def test_imports_point_down():
    upward = []
    for name, path in modules().items():
        if layer(name) is None:
            continue
        for target in imports_of(name, path):
            if layer(target) is not None and layer(target) > layer(name):
                upward.append(f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycles():
    graph = {name: imports_of(name, path) for name, path in modules().items()}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])


def test_the_package_maps_list_what_exists():
    """The docstring of clipadapt and of each of its packages names every module in it."""
    import importlib

    for package in ("",) + PACKAGES:
        doc = importlib.import_module("clipadapt" + (f".{package}" if package else "")).__doc__
        prefix = f"{package}." if package else ""
        names = [m[len(prefix):] for m in modules() if m.startswith(prefix) and m != package
                 and "." not in m[len(prefix):] and m[len(prefix):] not in ("", "__main__")]
        missing = [n for n in names if f"``{n}``" not in doc]
        assert not missing, f"clipadapt{'.' + package if package else ''}'s docstring does not name {missing}"


def test_no_module_over_400_lines():
    long = {m: n for m, p in modules().items() if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"split these modules (over 400 lines): {long}"


def test_runners_learn_hooks_only_through_the_protocols():
    """No ``hasattr``/``getattr`` probe for a method's or a task's hook: they are declared by
    :class:`clipadapt.methods.protocol.Method`, the protocols beside it (asked through its
    helpers) and :class:`clipadapt.tasks.protocol.Task`."""
    import inspect

    from clipadapt.methods import protocol
    from clipadapt.methods.protocol import Method
    from clipadapt.tasks.protocol import Task

    hooks = {n for n, _ in inspect.getmembers(Method) if not n.startswith("_") and n not in dir(torch.nn.Module)}
    hooks |= {n for p in (*protocol.INTERFACES.values(), protocol.FeatureClassifier, *protocol.OPTIONAL)
              for n in protocol.members(p)}
    hooks |= {n for n, _ in inspect.getmembers(Task) if not n.startswith("_")}
    probes = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("hasattr", "getattr") \
                    and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and node.args[1].value in hooks:
                probes.append(f"{name}:{node.lineno} {node.func.id}(..., {node.args[1].value!r})")
    assert not probes, "hooks probed instead of declared:\n" + "\n".join(probes)


LAZY_MARKS = ("# lazy:", "# cycle:")


def function_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import inside a function body of the file at ``path`` that
    imports a clipadapt module (relative, or ``clipadapt.``) or a third-party one (the standard
    library is left alone), and carries no ``# lazy: <why>`` / ``# cycle: <a> imports <b>``
    comment: on its own lines, or heading the run of imports, comments and blank lines it is in."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    found = {}
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        nodes = [n for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))]
        import_lines = {i for n in nodes for i in range(n.lineno, n.end_lineno + 1)}
        for node in nodes:
            if isinstance(node, ast.ImportFrom):
                names = ["." * node.level + (node.module or "")]
            else:
                names = [a.name for a in node.names]
            checked = [m for m in names if m.startswith((".", "clipadapt"))
                       or m.split(".")[0] not in sys.stdlib_module_names]
            if not checked:
                continue
            block = list(range(node.lineno, node.end_lineno + 1))
            i = node.lineno - 1
            while i >= 1 and (i in import_lines or not lines[i - 1].strip() or lines[i - 1].strip().startswith("#")):
                block.append(i)
                i -= 1
            if not any(mark in lines[j - 1] for j in block for mark in LAZY_MARKS):
                found[node.lineno] = ", ".join(checked)
    return sorted(found.items())


def test_function_level_imports_say_why():
    """Imports of clipadapt and third-party modules sit in the module's header; one inside a
    function says why it is there: ``# lazy: <reason>`` (an optional dependency only one
    command needs) or ``# cycle: <a> imports <b>``."""
    bare = [f"{name}:{line} imports {what}" for name, path in modules().items()
            for line, what in function_imports(path)]
    assert not bare, ("move these imports to the module's header, or say why they stay "
                      "(# lazy: <reason> / # cycle: <a> imports <b>):\n" + "\n".join(bare))


def test_function_imports_check_finds_a_bare_import(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("import os\n\n\ndef f():\n    import yaml\n    from ..data import fewshot\n    import json\n\n\n"
                    "def g():\n    # lazy: the book extra\n    import papermill\n\n    import nbformat\n"
                    "    from . import kernels  # cycle: kernels imports m\n")
    assert function_imports(path) == [(5, "yaml"), (6, "..data")]
