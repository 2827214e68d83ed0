"""TempMe's benchmark (clipadapt.bench.tempme) measures what it is given and changes nothing
outside itself: the benchmarks assign no attribute of another module, and the merge timer's
run leaves clipadapt.core.merge, clipadapt.core.patching and clipadapt.methods.tempme as
they were; and its verdicts hold on a shared machine: the encoders are timed in turn, round
after round (clipadapt.bench.rounds), and judged on the median of the rounds' speed-ups."""

import ast
import copy
import importlib.util
import time
from pathlib import Path

import pytest
import torch

from clipadapt.bench import rounds
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


# -- the verdicts: interleaved rounds, per-round ratios, median and spread ------------------------

def test_interleaved_calls_each_function_once_a_round_in_rotating_order():
    order, syncs = [], []
    fns = {name: (lambda name=name: order.append(name)) for name in "abc"}
    times = rounds.interleaved(fns, 4, sync=lambda: syncs.append(1))
    assert order == list("abc" "bca" "cab" "abc")  # none always first
    assert {name: (len(t.wall), len(t.cpu)) for name, t in times.items()} == {n: (4, 4) for n in "abc"}
    assert all(s >= 0 for t in times.values() for s in t.wall + t.cpu) and len(syncs) == 2 * 12


def test_interleaved_counts_this_processs_processor_time_not_the_wait():
    def waits():
        time.sleep(0.05)  # off the processor, as when other processes hold it

    def works():
        end = time.process_time() + 0.05
        while time.process_time() < end:
            pass

    times = rounds.interleaved({"waits": waits, "works": works}, 2)
    assert min(times["waits"].wall) >= 0.05 and max(times["waits"].cpu) < 0.02
    assert min(times["works"].cpu) >= 0.05


def test_interleaved_refuses_no_rounds_and_no_functions():
    with pytest.raises(ValueError, match="rounds must be at least 1, got 0"):
        rounds.interleaved({"a": lambda: None}, 0)
    with pytest.raises(ValueError, match="at least one function"):
        rounds.interleaved({}, 3)


def test_spread_is_median_quartiles_and_extremes():
    assert rounds.spread([5, 1, 4, 2, 3]) == rounds.Spread(3, 2, 4, 1, 5, 5)
    assert rounds.spread([2.0]) == rounds.Spread(2.0, 2.0, 2.0, 2.0, 2.0, 1)
    assert str(rounds.spread([1.0, 2.0, 3.0])) == "2.00x over 3 rounds (middle half 1.50x-2.50x, all 1.00x-3.00x)"
    with pytest.raises(ValueError, match="at least one value"):
        rounds.spread([])


def test_speedup_divides_round_by_round_so_a_load_burst_cancels():
    # the machine slows down four-fold in rounds 2 and 3 for both encoders alike
    reference, candidate = [2.0, 2.0, 8.0, 8.0, 2.0], [1.0, 1.0, 4.0, 4.0, 1.0]
    assert rounds.speedup(reference, candidate) == rounds.Spread(2.0, 2.0, 2.0, 2.0, 2.0, 5)
    # a burst in one round only, over the candidate's call: an outlier that the median ignores
    assert rounds.speedup([2.0, 2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 4.0, 1.0, 1.0]).median == 2.0
    with pytest.raises(ValueError, match="same rounds for both, got 2 and 1"):
        rounds.speedup([1.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="seconds must be positive"):
        rounds.speedup([1.0], [0.0])


def test_verdict_reads_the_median_and_says_whether_the_middle_half_agrees():
    clear = rounds.Spread(1.6, 1.55, 1.65, 1.2, 1.9, 7)
    assert rounds.verdict(clear, 1.3) == (True, True)
    assert rounds.verdict(clear, 1.7) == (False, True)
    assert rounds.verdict(clear, 1.6) == (True, False)  # q1 below, q3 above: a rerun may differ
    assert rounds.verdict(rounds.Spread(0.03, 0.02, 0.04, 0.01, 0.09, 7), 0.05, at_least=False) == (True, True)
    assert rounds.verdict(rounds.Spread(0.05, 0.04, 0.06, 0.01, 0.09, 7), 0.05, at_least=False) == (True, False)


def rows(model, cpu_s, gmacs, share):
    """Fake inference rows: processor seconds per round (the wall clock twice as long) and G MACs
    of each encoder."""
    out = [{"model": model, "encoder": e, "cpu_s": cpu_s[e], "wall_s": [2 * t for t in cpu_s[e]],
            "gmacs": gmacs[e]} for e in cpu_s]
    out[-1]["merge_share"] = rounds.spread(share)
    return out


def test_inference_checks_judge_the_median_ratio_of_vit_b32_only():
    seconds = {"unmerged": [3.0, 6.0, 3.0], "VoP": [4.0, 8.0, 4.0], "TempMe": [2.0, 4.0, 2.0]}
    gmacs = {"unmerged": 3.0, "VoP": 4.0, "TempMe": 2.0}
    checks = bench.inference_checks(rows("ViT-B-32", seconds, gmacs, [0.02, 0.03, 0.02])
                                    + rows("ViT-B-16", seconds, gmacs, [0.5]))
    speed = "speed-up in processor time"
    assert [(c.model, c.what, c.target) for c in checks] == [
        ("ViT-B-32", f"TempMe / unmerged {speed}", bench.TARGETS["TempMe / unmerged"]),
        ("ViT-B-32", f"TempMe / VoP {speed}", bench.TARGETS["TempMe / VoP"]),
        ("ViT-B-32", "merge overhead", bench.MAX_OVERHEAD),
        ("ViT-B-16", f"TempMe / unmerged {speed}", None), ("ViT-B-16", f"TempMe / VoP {speed}", None),
        ("ViT-B-16", "merge overhead", None)]
    first = checks[0]
    assert first.measured.median == 1.5 and first.macs_ratio == 1.5
    met, line = first.line()
    assert met == (1.5 >= bench.TARGETS["TempMe / unmerged"]) and line.endswith("yes" if met else "NO")
    assert "1.50x over 3 rounds" in line and "on the median, multiply-add ratio 1.50x" in line
    share = ("  ViT-B-32 merge overhead: 2.0% over 3 rounds (middle half 2.0%-2.5%, all 2.0%-3.0%) of TempMe's "
             f"encoder time; target <= {bench.MAX_OVERHEAD:.0%} on the median  yes")
    assert checks[2].line() == (True, share)
    assert checks[5].line()[0] and "no target" in checks[5].line()[1]  # 50 %, but ViT-B/16 has no target
    wall = bench.inference_checks(rows("ViT-B-32", seconds, gmacs, [0.02]), clock="wall_s")
    assert wall[0].what == "TempMe / unmerged speed-up in wall clock" and wall[0].measured.median == 1.5


def test_a_check_says_when_its_verdict_is_not_firm():
    loose = bench.Check("ViT-B-32", "TempMe / unmerged", rounds.spread([1.0, 1.4, 1.6, 2.0]), 1.45,
                        macs_ratio=3.0)
    assert loose.line()[0] and "a rerun may judge otherwise" in loose.line()[1]
    firm = bench.Check("ViT-B-32", "TempMe / unmerged", rounds.spread([1.5, 1.6, 1.7]), 1.45, macs_ratio=1.52)
    line = ("  ViT-B-32 TempMe / unmerged: 1.60x over 3 rounds (middle half 1.55x-1.65x, all 1.50x-1.70x); "
            "target >= 1.45x on the median, multiply-add ratio 1.52x  yes")
    assert firm.line() == (True, line)


def test_the_clocks_shown_judge_processor_time_on_the_cpu_and_the_wall_clock_on_a_gpu():
    assert bench.clocks(torch.device("cpu")) == ("wall_s", "cpu_s")
    assert bench.clocks(torch.device("cuda")) == ("wall_s",)
