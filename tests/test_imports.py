"""The library's import graph has no cycles and points one way: a module imports only from
its own layer or the layers below (module-level and function-level imports alike)."""

import ast
from pathlib import Path

import pytest

import clipadapt

ROOT = Path(clipadapt.__file__).parent
# lowest first; a module may import from its own layer and the layers before it
LAYERS = [
    {"files", "seeds", "profiles", "flops", "metrics", "losses", "viz", "distributed", "memory"},
    {"checkpoints", "runstate", "train", "data.pixels", "data.worlds", "data.video", "data.msrvtt", "data.fewshot",
     "data.video_sets", "data.download", "data.fixtures", "data.multitask",
     "data.multilabel", "data.multilabel_sets"},
    {"models"},
    {"prompting", "features", "merge", "patching"},
    {"methods.coop", "methods.vpt", "methods.lora", "methods.vop", "methods.tempme",
     "methods.tempme_schedule", "methods.tome", "methods.softcpt", "methods.scpnet"},
    {"tuning", "adapt", "retrieval"},
    {"recipes", "tasks", "registry"},
    {"runner"},
    {"pretrain", "bench", "bench_tempme", "book", "kernels", "reproduce"},
]
LAYER = {m: i for i, layer in enumerate(LAYERS) for m in layer}


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
    missing = [m for m in modules() if m not in LAYER and m not in ("", "data", "methods", "__main__")]
    assert not missing, f"give these modules a layer in tests/test_imports.py: {missing}"


def test_imports_point_down():
    upward = []
    for name, path in modules().items():
        if name not in LAYER:
            continue
        for target in imports_of(name, path):
            if target in LAYER and LAYER[target] > LAYER[name]:
                upward.append(f"{name} (layer {LAYER[name]}) imports {target} (layer {LAYER[target]})")
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
    """The docstrings of clipadapt, clipadapt.methods and clipadapt.data name every module."""
    for package, prefix in ((clipadapt, ""), (clipadapt.methods, "methods."), (clipadapt.data, "data.")):
        doc = package.__doc__
        names = [m[len(prefix):] for m in modules() if m.startswith(prefix) and "." not in m[len(prefix):]
                 and m[len(prefix):] not in ("", "data", "methods", "__main__")]
        missing = [n for n in names if f"``{n}``" not in doc]
        assert not missing, f"{package.__name__}'s docstring does not name {missing}"


import clipadapt.data  # noqa: E402
import clipadapt.methods  # noqa: E402
