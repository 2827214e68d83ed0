"""Chapter 8's map: every method of Parts I and II trained once on its part's task, with
what it costs and what it reaches, side by side.

Every point of the map is a named experiment of ``clipadapt/experiments/ch08.toml`` (its
method, variant, task and budget), run through :class:`clipadapt.experiments.Lab`, so
``python -m clipadapt.reproduce ch08/NAME`` gives its numbers.

* :data:`ENTRIES` -- the methods on the map, one experiment each (Part I: the few-shot
  classification task of chapter 2; Part II: the video retrieval task of chapters 3-5);
* :func:`measure` -- one run: trainable parameters, multiply-adds per sample, training time
  per step, the run's peak memory and the task's quality metric;
* :func:`pareto_front` -- the runs that no other run beats on both cost and quality;
* :func:`cited` -- the papers' own numbers for ViT-B/32 and ViT-B/16, cited, never measured;
* :func:`other_tasks` -- Part III's methods (:data:`OTHERS`), which solve other tasks: their cost only.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import torch

from .. import chapter, experiments, profiles
from ..methods import registry, tempme
from ..training import recipes
from .memory import PeakMemory

CHAPTER = "ch08"


@dataclass(frozen=True)
class Entry:
    task: str  # "classification" or "retrieval" (MethodSpec.task)
    method: str  # a name of clipadapt.methods.registry
    variant: str | None = None
    experiment: str | None = None  # "ch08/NAME": the named experiment that runs this point

    @property
    def label(self) -> str:
        if self.method == "VoP":
            return "VoP" if self.variant == "vop" else f"VoP^{self.variant}"
        if self.method in ("mean pooling", "TempMe"):
            tuning = {"none": "nothing trained", "lora": "LoRA", "full": "full fine-tune"}
            return f"{self.method} ({tuning.get(self.variant, self.variant)})"
        return self.method


QUALITY = {"classification": "accuracy (%)", "retrieval": "t2v R@1 (%)"}

# the chapter's experiments, in the file's order (the map's and its tables' order)
_SPECS = experiments.load_file(experiments.spec.FOLDER / f"{CHAPTER}.toml")
ENTRIES: tuple[Entry, ...] = tuple(Entry(s.task["kind"], s.method, s.variant, name) for name, s in _SPECS.items()
                                   if s.task["kind"] in QUALITY)
# Part III's experiments: other tasks, placed by their cost
OTHERS: tuple[str, ...] = tuple(name for name, s in _SPECS.items() if s.task["kind"] not in QUALITY)

def quality(task: str, metrics: dict) -> float:
    """The one number the map plots for a run of ``task`` (a percentage)."""
    if task == "classification":
        return 100 * metrics["accuracy"]
    return metrics["text_to_video"]["R@1"]


def budget(entry: Entry, profile: profiles.Profile) -> recipes.Recipe:
    """The recipe ``entry``'s experiment trains with under ``profile``: the method's, with the
    experiment's overrides (under ``tiny``, every trained method's steps cut to 24, as
    ``experiments/ch08.toml`` declares; elsewhere each recipe's own)."""
    return experiments.recipe_of(experiments.get(entry.experiment, profile), profile)


def tasks_of(lab: experiments.Lab) -> dict:
    """The task of each part (kind -> task), built through ``lab`` as the map's experiments
    build them: their data are read (and synthetic videos written) here, once, so that no
    run's measurement includes it."""
    out = {}
    for kind in QUALITY:
        name = next(e.experiment for e in ENTRIES if e.task == kind)
        point = lab.bench.points(lab.spec(name))[0]  # the run's seed, and its shots
        out[kind] = lab.task(name, point["seed"], point.get("shots"))
    return out


def _release_freed_memory() -> None:
    """Give freed heap pages back to the system (glibc), so that the resident size before a
    run is its real starting level."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the baseline is then only less tight
        pass


def measure(lab: experiments.Lab, entry: Entry, seed: int | None = None) -> dict:
    """Run ``entry``'s experiment through ``lab`` (:meth:`~clipadapt.experiments.Lab.run`,
    which trains it with :func:`clipadapt.training.driver.run`) and return its row of the map:
    the run's trainable parameters, multiply-adds, steps and metrics, and its time per step.

    Peak memory: on a GPU, the peak of allocated memory during the run; on the CPU, the peak
    resident size of this process above its size just before the run, sampled every 10 ms
    (memory the allocator kept from earlier runs and reused is not counted). Build the
    tasks first (:func:`tasks_of`), so that reading the data is not counted either."""
    device = next(lab.bench.clip.parameters()).device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        runs = lab.run(entry.experiment)
        peak = torch.cuda.max_memory_allocated(device) - before
    else:
        _release_freed_memory()
        with PeakMemory(interval=0.01, children=False) as mem:
            before = mem.rss()
            runs = lab.run(entry.experiment)
        peak = max(0, mem.peak - before)
    result = runs.at(seed)
    row = {"task": entry.task, "method": entry.label, "trainable": result.trainable,
           "M multiply-adds": result.macs / 1e6, "steps": result.steps,
           "ms / step": 1000 * result.train_seconds / result.steps if result.steps else 0.0,
           "peak MB": peak / 2**20, "quality": quality(entry.task, result.metrics)}
    if "reversal" in result.metrics:
        row["reversal (%)"] = 100 * result.metrics["reversal"]
    row["seconds"] = result.seconds
    return row


def columns(rows: list[dict], task: str) -> list[dict]:
    """``task``'s rows as the chapter's table shows them: the quality named by its metric,
    without the columns every row of the task shares (task, steps: the budget) or that the
    page has no room for (seconds)."""
    out = []
    for r in rows:
        if r["task"] != task:
            continue
        row = {k: v for k, v in r.items() if k not in ("task", "quality", "seconds", "steps")}
        row[QUALITY[task]] = r["quality"]
        if "reversal (%)" in row:
            row["reversal (%)"] = row.pop("reversal (%)")  # last, beside the quality
        out.append(row)
    return out


def pareto_front(rows: list[dict], cost: str = "trainable", value: str = "quality") -> list[str]:
    """The methods of ``rows`` (one task) that no other row beats: none has a lower or equal
    ``cost`` with a higher ``value``, or a lower ``cost`` with an equal ``value``; cheapest first."""
    front = []
    for r in rows:
        beaten = any((o[cost] <= r[cost] and o[value] > r[value]) or (o[cost] < r[cost] and o[value] >= r[value])
                     for o in rows if o is not r)
        if not beaten:
            front.append(r)
    return [r["method"] for r in sorted(front, key=lambda r: r[cost])]


def cited() -> list[dict]:
    """The papers' own numbers (MSR-VTT 9k / 1k-A, 12 frames), cited and never measured
    here: VoP's Table 1 (ViT-B/32; trainable parameters and t2v R@1) from the registry, and
    TempMe's visual multiply-adds (ViT-B/32 and ViT-B/16) from :data:`tempme.PAPER_TABLE`."""
    rows = []
    for method in ("mean pooling", "VoP"):
        spec = registry.get(method)
        for variant, numbers in spec.paper.items():
            label = Entry("retrieval", method, variant).label
            rows.append({"method": label, "backbone": "ViT-B/32", "trainable (M, %)": numbers["params (M, %)"],
                         "G multiply-adds": "-", "t2v R@1 (%)": numbers["t2v R@1"],
                         "cited from": "VoP, Table 1"})
    for setting, (gflops, _, _) in tempme.PAPER_TABLE.items():
        backbone, method = setting.split(" ", 1)
        rows.append({"method": method, "backbone": backbone, "trainable (M, %)": "-", "G multiply-adds": gflops,
                     "t2v R@1 (%)": "-", "cited from": "TempMe"})
    return rows


def other_tasks(lab: experiments.Lab, names: tuple[str, ...] = OTHERS) -> list[dict]:
    """Trainable parameters and multiply-adds per sample of Part III's experiments ``names``
    on their own tasks, run through ``lab`` (built and evaluated, not trained: each
    experiment's budget is 0 steps)."""
    rows = []
    for name in names:
        spec = lab.spec(name)
        result = lab.run(name).at()
        rows.append({"task": spec.task["kind"], "method": spec.label, "trainable": result.trainable,
                     "M multiply-adds": result.macs / 1e6})
    return rows


def guide(rows: list[dict]) -> list[str]:
    """The map read as advice, one markdown line per situation, each line quoting the
    numbers of the runs it rests on (``rows`` from :func:`measure`, both tasks)."""
    image = [r for r in rows if r["task"] == "classification"]
    video = [r for r in rows if r["task"] == "retrieval"]
    lines = []
    if image:
        zero = next(r for r in image if r["trainable"] == 0)
        trained = [r for r in image if r["trainable"] > 0]
        most = max(r["trainable"] for r in image)
        frozen = [r for r in trained if r["trainable"] <= 0.01 * most]  # CLIP's own weights stay
        lines.append(f"**No labels:** {zero['method']} trains nothing and reaches {zero['quality']:.1f}% accuracy.")
        if frozen:
            pick = max(frozen, key=lambda r: r["quality"])
            lines.append(f"**Few labels and a frozen model:** {pick['method']} reaches {pick['quality']:.1f}% "
                         f"({pick['quality'] - zero['quality']:+.1f} points over zero-shot) with "
                         f"{pick['trainable']:,} trainable numbers, at {pick['ms / step']:.0f} ms a step.")
        if trained:
            best = max(trained, key=lambda r: r["quality"])
            lines.append(f"**Quality first:** {best['method']} reaches {best['quality']:.1f}% with "
                         f"{best['trainable']:,} trainable numbers, at {best['ms / step']:.0f} ms a step.")
    if video:
        still = min(video, key=lambda r: (r["trainable"], r["M multiply-adds"]))
        tuned = [r for r in video if r["trainable"] > 0]
        lines.append(f"**Videos, nothing trained:** {still['method']} reaches {still['quality']:.1f}% R@1.")
        if tuned:
            lean = min(tuned, key=lambda r: r["M multiply-adds"])
            top = max(tuned, key=lambda r: r["quality"])
            lines.append(f"**Many videos and a tight inference budget:** {lean['method']} needs "
                         f"{lean['M multiply-adds'] / still['M multiply-adds']:.2f} times the multiply-adds of "
                         f"{still['method']} per video, at {lean['quality']:.1f}% R@1 "
                         f"({lean['quality'] - still['quality']:+.1f} points).")
            lines.append(f"**The best retrieval at this budget:** {top['method']}, {top['quality']:.1f}% R@1 "
                         f"({top['quality'] - still['quality']:+.1f} points over nothing trained) with "
                         f"{top['trainable']:,} trainable numbers.")
            if all("reversal (%)" in r for r in tuned):
                order = max(tuned, key=lambda r: r["reversal (%)"])
                lines.append(f"**When order matters** (a caption against its time-reversed twin's, 50% is "
                             f"guessing): {order['method']} tells them apart {order['reversal (%)']:.0f}% of "
                             "the time.")
    if rows:
        heavy = max(rows, key=lambda r: r["peak MB"])
        lines.append(f"**Memory:** the largest run, {heavy['method']}, took {heavy['peak MB']:.0f} MB above "
                     "the process's level before it.")
    return lines


def measure_all(profile: profiles.Profile, workdir: str = ".", data_root=None) -> list[dict]:
    """Every entry of the map measured as chapter 8 measures it, through a lab that glues
    nothing (``python -m clipadapt.bench --map``)."""
    p, _, clip, preprocess, tokenizer = chapter.setup(profile)
    lab = experiments.Lab(p, clip, preprocess, tokenizer, data_root, workdir=workdir, glue=False)
    tasks_of(lab)
    return [measure(lab, e) for e in ENTRIES]


def format_rows(rows: list[dict]) -> str:
    """The map as a text table (the README's and the measurements page's)."""
    head = (f"{'task':<15}{'method':<32}{'trainable':>11}{'M MACs':>8}{'steps':>6}{'ms/step':>9}"
            f"{'peak MB':>9}{'quality':>9}{'reversal':>9}")
    lines = [head]
    for r in rows:
        rev = f"{r['reversal (%)']:.1f}" if "reversal (%)" in r else "-"
        lines.append(f"{r['task']:<15}{r['method']:<32}{r['trainable']:>11,}{r['M multiply-adds']:>8.1f}"
                     f"{r['steps']:>6}{r['ms / step']:>9.1f}{r['peak MB']:>9.0f}{r['quality']:>9.1f}{rev:>9}")
    return "\n".join(lines)
