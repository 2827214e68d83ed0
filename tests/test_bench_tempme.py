"""TempMe's benchmark (clipadapt.bench.tempme) measures what it is given and changes nothing
outside itself: the benchmarks assign no attribute of another module, and the merge timer's
run leaves clipadapt.core.merge, clipadapt.core.patching and clipadapt.methods.tempme as
they were."""

import ast
import copy
import importlib.util
from pathlib import Path

import torch

from clipadapt.bench import tempme as bench
from clipadapt.core import merge, patching
from clipadapt.methods import tempme
from clipadapt.methods.tempme_schedule import SCHEDULES

BENCH = Path(bench.__file__).parent


def is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, AttributeError, ValueError):  # a name inside a module, not a module
        return False


def module_names(tree: ast.Module, package: str = "clipadapt.bench") -> set[str]:
    """The names that the imports of a file of ``package`` (anywhere in it) bind to modules."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.asname or a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level \
                else node.module
            names |= {a.asname or a.name for a in node.names if is_module(f"{base}.{a.name}")}
    return names


def root(node: ast.AST) -> str | None:
    """The name an attribute chain starts from: ``merge`` of ``merge.f`` and ``torch.backends.x``."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def writes_module(target: ast.AST, mods: set[str]) -> bool:
    """Whether assigning to ``target`` changes a module: ``merge.f = ...``, ``torch.a.b = ...``,
    ``merge.TABLE[k] = ...`` (unpacking targets: any of them)."""
    if isinstance(target, (ast.Tuple, ast.List)):
        return any(writes_module(t, mods) for t in target.elts)
    if isinstance(target, ast.Starred):
        return writes_module(target.value, mods)
    while isinstance(target, ast.Subscript):
        target = target.value
    return isinstance(target, ast.Attribute) and root(target) in mods


def module_writes(path: Path) -> list[str]:
    """``line: what`` for every assignment to (or deletion of) an attribute of an imported
    module in the file at ``path``, by statement or by setattr/delattr."""
    tree = ast.parse(path.read_text())
    mods = module_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.Delete)):
            hit = any(writes_module(t, mods) for t in node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            hit = writes_module(node.target, mods)
        else:
            hit = isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("setattr", "delattr") \
                and bool(node.args) and root(node.args[0]) in mods
        if hit:
            found.append((node.lineno, f"{node.lineno}: {ast.unparse(node).splitlines()[0]}"))
    return [text for _, text in sorted(found)]


def test_benchmarks_assign_no_attribute_of_another_module():
    writes = {p.name: w for p in sorted(BENCH.glob("*.py")) if (w := module_writes(p))}
    assert not writes, f"benchmarks that change other modules (pass the alternative in instead): {writes}"


def test_the_scan_finds_a_swap(tmp_path):
    path = tmp_path / "swap.py"
    path.write_text("import torch\nfrom ..core import merge\n\n\ndef f(fn):\n    merge.merge_wavg = fn\n"
                    "    setattr(merge, 'group_frames', fn)\n    torch.backends.cudnn.benchmark = True\n"
                    "    x = merge.MergeOps()\n    x.y = 1\n    d = {}\n    d[merge.__name__] = 1\n    merge.T[0] = 2\n")
    assert [w.split(":")[0] for w in module_writes(path)] == ["6", "7", "8", "13"]


def snapshot():
    return {m.__name__: dict(vars(m)) for m in (merge, patching, tempme)}


def test_merge_timer_times_the_merging_and_changes_no_module(tiny_clip):
    clip = tiny_clip[0]
    timer = bench.MergeTimer(torch.device("cpu"))
    before = snapshot()
    stock = tempme.TempMe(copy.deepcopy(clip), SCHEDULES["tiny-clip"], frames=8, policy="none")
    timed = tempme.TempMe(copy.deepcopy(clip), SCHEDULES["tiny-clip"], frames=8, policy="none", ops=timer.ops)
    video = torch.randn(2, 8, 3, 64, 64)
    with torch.no_grad():
        timed.encode_video(video)
        assert timer.spent == 0.0  # off: the plain functions, untimed
        with timer:
            during = snapshot()
            out = timed.encode_video(video)
        expected = stock.encode_video(video)
    assert timer.spent > 0 and not timer.on
    assert torch.allclose(out, expected, atol=1e-6)  # the same merging, only timed
    assert during == before and snapshot() == before
    assert stock.state.ops == merge.MergeOps() and timed.state.ops is timer.ops
