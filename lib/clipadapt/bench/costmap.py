"""Chapter 8's map: every method of Parts I and II, as its own chapter ran it, with what it
costs and what it reaches, side by side.

The map makes no runs of its own: each point is a chapter's named experiment (:data:`MAP`)
at that chapter's budget and seeds, read from the run store where the chapter filed it
(:meth:`clipadapt.experiments.Lab.borrow`; run there and then if it is missing). So chapter 8
can never disagree with chapters 2 to 5: its numbers are theirs.

* :data:`ENTRIES` -- the methods on the map (Part I: chapter 2's few-shot task at its
  largest shot count; Part II: the video task of chapters 3-5);
* :func:`measure` -- one point: trainable parameters, multiply-adds per sample, training
  time per step, peak memory, and the quality of every seed;
* :func:`pareto_front` -- the points that no other point beats on both cost and quality;
* :func:`guide` -- the map read as advice, naming a winner only where every seed agrees;
* :func:`cited` -- the papers' own numbers for ViT-B/32 and ViT-B/16, cited, never measured;
* :func:`other_tasks` -- Part III's methods (:data:`OTHERS`), which solve other tasks: their cost only.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from .. import chapter, experiments, profiles
from ..core import evidence
from ..methods import registry, tempme

CHAPTER = "ch08"

# the map's points, the chapters' own experiments: Part I at chapter 2's largest shot count;
# Part II on the twin-pair batches of chapters 4 and 5, and chapter 3's full fine-tuning
# (which draws single pairs: no chapter fine-tunes everything on twin pairs)
MAP = ("ch02/zero-shot", "ch02/linear-probe", "ch02/coop", "ch02/vpt-deep", "ch02/lora", "ch02/full-fine-tune",
       "ch04/mean-pooling", "ch05/mean-pooling-lora", "ch03/mean-pooling-full", "ch04/vop", "ch04/vop-p",
       "ch04/vop-c", "ch04/vop-f", "ch04/vop-f-p", "ch04/vop-f-c", "ch05/tempme-lora")


@dataclass(frozen=True)
class Entry:
    task: str  # "classification" or "retrieval" (MethodSpec.task)
    method: str  # a name of clipadapt.methods.registry
    variant: str | None = None
    experiment: str | None = None  # "chNN/NAME": the chapter's experiment this point reads

    @property
    def label(self) -> str:
        if self.method == "VoP":
            return "VoP" if self.variant == "vop" else f"VoP^{self.variant}"
        if self.method in ("mean pooling", "TempMe"):
            tuning = {"none": "nothing trained", "lora": "LoRA", "full": "full fine-tune"}
            return f"{self.method} ({tuning.get(self.variant, self.variant)})"
        return self.method


QUALITY = {"classification": "accuracy (%)", "retrieval": "t2v R@1 (%)"}


def _entry(name: str) -> Entry:
    s = experiments.get(name)
    return Entry(s.task["kind"], s.method, s.variant, name)


ENTRIES: tuple[Entry, ...] = tuple(_entry(n) for n in MAP)
# Part III's experiments (chapter 8's own file): other tasks, placed by their cost
OTHERS: tuple[str, ...] = tuple(experiments.names(CHAPTER))


def quality(task: str, metrics: dict) -> float:
    """The one number the map plots for a run of ``task`` (a percentage)."""
    if task == "classification":
        return 100 * metrics["accuracy"]
    return metrics["text_to_video"]["R@1"]


def shots_of(lab: experiments.Lab, entry: Entry) -> int | None:
    """The shot count of ``entry``'s point: the largest its experiment runs (None: no shots)."""
    counts = lab.bench.shot_counts(lab.spec(entry.experiment))
    return None if counts == [None] else max(counts)


def measure(lab: experiments.Lab, entry: Entry) -> dict:
    """``entry``'s point, from its chapter's runs (:meth:`~clipadapt.experiments.Lab.borrow`):
    trainable parameters and multiply-adds (the same on every seed), training time per step
    and peak memory (the mean and the largest over the seeds: on a GPU the peak of allocated
    memory during a run, on the CPU the peak resident size above its level before the run),
    and the quality of every seed (``values``) with their mean (``quality``) and spread."""
    runs = lab.borrow(entry.experiment, shots=shots_of(lab, entry))
    first = runs.at()
    values = runs.values(lambda r: quality(entry.task, r.metrics))
    ms = [1000 * r.train_seconds / r.steps for r in runs.results if r.steps]
    row = {"task": entry.task, "method": entry.label, "experiment": entry.experiment,
           "trainable": first.trainable, "M multiply-adds": first.macs / 1e6, "steps": first.steps,
           "ms / step": statistics.mean(ms) if ms else 0.0,
           "peak MB": max((r.peak_bytes or 0) for r in runs.results) / 2**20,
           "quality": statistics.mean(values), "sd": statistics.pstdev(values), "values": values,
           "seeds": list(runs.spec.seeds)}
    if "reversal" in first.metrics:
        rev = runs.values(lambda r: 100 * r.metrics["reversal"])
        row["reversal (%)"], row["reversal values"] = statistics.mean(rev), rev
    return row


def columns(rows: list[dict], task: str) -> list[dict]:
    """``task``'s rows as the chapter's table shows them: the quality named by its metric with
    its spread, without what the page has no room for (per-seed values, seeds, task)."""
    out = []
    for r in rows:
        if r["task"] != task:
            continue
        row = {"method": r["method"], "from": r["experiment"], "trainable": r["trainable"],
               "M MACs": r["M multiply-adds"], "steps": r["steps"], "ms / step": r["ms / step"],
               "peak MB": r["peak MB"], QUALITY[task]: r["quality"], "sd": r["sd"]}
        if "reversal (%)" in r:
            row["reversal (%)"] = r["reversal (%)"]
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


def winner(rows: list[dict], value: str = "values") -> tuple[str, dict | None]:
    """The best of ``rows`` by mean, in words, and the paired comparison with the runner-up
    behind it: the best is named only where it is ahead on every seed (and on at least
    :data:`clipadapt.core.evidence.MIN_SEEDS`); otherwise "no clear winner" among the rows
    the seeds cannot separate from it."""
    mean = (lambda r: r["quality"]) if value == "values" else (lambda r: statistics.mean(r[value]))
    ranked = sorted(rows, key=mean, reverse=True)
    if len(ranked) == 1:
        return ranked[0]["method"], None
    best = ranked[0]
    ties = [r for r in ranked[1:] if not evidence.compare(best[value], r[value], best["method"],
                                                          r["method"])["settled"]]
    c = evidence.compare(best[value], ranked[1][value], best["method"], ranked[1]["method"])
    if not ties:
        return best["method"], c
    names = ", ".join(r["method"] for r in [best, *ties])
    return f"no clear winner among {names}", c


def guide(rows: list[dict]) -> tuple[list[str], list[dict]]:
    """The map read as advice, one markdown line per situation, each quoting the numbers it
    rests on; and the comparisons behind every winner it names (``rows`` from
    :func:`measure`, both tasks, each with the quality of every seed)."""
    image = [r for r in rows if r["task"] == "classification"]
    video = [r for r in rows if r["task"] == "retrieval"]
    lines, claims = [], []

    def pick(label: str, candidates: list[dict], value: str = "values") -> str:
        name, c = winner(candidates, value)
        if c is not None:
            claims.append({"situation": label, "named": name, **{k: c[k] for k in ("a", "b", "mean", "sd", "agree",
                                                                                     "n", "settled")}})
        return name

    def seeds(r: dict, extra: str = "") -> str:
        return f"{r['method']} {r['quality']:.1f} ± {r['sd']:.1f}%{extra}"

    if image:
        zero = next(r for r in image if r["trainable"] == 0)
        trained = [r for r in image if r["trainable"] > 0]
        most = max(r["trainable"] for r in image)
        frozen = [r for r in trained if r["trainable"] <= 0.01 * most]  # CLIP's own weights stay
        lines.append(f"**No labels:** {zero['method']} trains nothing and reaches {zero['quality']:.1f}% accuracy.")
        if frozen:
            name = pick("few labels, frozen model", frozen)
            lines.append(f"**Few labels and a frozen model:** {name} ({'; '.join(seeds(r) for r in frozen)}).")
        if trained:
            name = pick("quality first", trained)
            top = sorted(trained, key=lambda r: -r["quality"])[:2]
            shown = "; ".join(seeds(r, f" with {r['trainable']:,} trainable") for r in top)
            lines.append(f"**Quality first:** {name} ({shown}).")
    if video:
        still = min(video, key=lambda r: (r["trainable"], r["M multiply-adds"]))
        tuned = [r for r in video if r["trainable"] > 0]
        lines.append(f"**Videos, nothing trained:** {still['method']} reaches {still['quality']:.1f}% R@1.")
        if tuned:
            lean = min(tuned, key=lambda r: r["M multiply-adds"])
            c = evidence.compare(lean["values"], still["values"], lean["method"], still["method"])
            lines.append(f"**Many videos and a tight inference budget:** {lean['method']} needs "
                         f"{lean['M multiply-adds'] / still['M multiply-adds']:.2f} times the multiply-adds of "
                         f"{still['method']} per video ({seeds(lean)} R@1): {c['says']}.")
            name = pick("best retrieval", tuned)
            shown = "; ".join(seeds(r) for r in sorted(tuned, key=lambda r: -r["quality"])[:3])
            lines.append(f"**The best retrieval at these budgets:** {name} ({shown}).")
            with_order = [r for r in tuned if "reversal values" in r]
            if with_order:
                name = pick("order", with_order, "reversal values")
                lines.append(f"**When order matters** (a caption against its time-reversed twin's, 50% is "
                             f"guessing): {name}.")
    if rows:
        heavy = max(rows, key=lambda r: r["peak MB"])
        lines.append(f"**Memory:** the largest run, {heavy['method']}, took {heavy['peak MB']:.0f} MB above "
                     "the process's level before it.")
    return lines, claims


def measure_all(profile: profiles.Profile, workdir: str = ".", data_root=None) -> list[dict]:
    """Every point of the map as chapter 8 reads it, through a lab that glues nothing
    (``python -m clipadapt.bench --map``): the chapters' runs from ``workdir``'s run store,
    the missing ones run."""
    p, _, clip, preprocess, tokenizer = chapter.setup(profile)
    lab = experiments.Lab(p, clip, preprocess, tokenizer, data_root, workdir=workdir, glue=False)
    return [measure(lab, e) for e in ENTRIES]


def format_rows(rows: list[dict]) -> str:
    """The map as a text table (the README's and the measurements page's): quality and
    reversal are means over the seeds, ``sd`` the quality's spread."""
    head = (f"{'task':<15}{'method':<32}{'trainable':>11}{'M MACs':>8}{'steps':>6}{'ms/step':>9}"
            f"{'peak MB':>9}{'quality':>9}{'sd':>6}{'seeds':>6}{'reversal':>9}")
    lines = [head]
    for r in rows:
        rev = f"{r['reversal (%)']:.1f}" if "reversal (%)" in r else "-"
        lines.append(f"{r['task']:<15}{r['method']:<32}{r['trainable']:>11,}{r['M multiply-adds']:>8.1f}"
                     f"{r['steps']:>6}{r['ms / step']:>9.1f}{r['peak MB']:>9.0f}{r['quality']:>9.1f}"
                     f"{r['sd']:>6.1f}{len(r['seeds']):>6}{rev:>9}")
    return "\n".join(lines)
