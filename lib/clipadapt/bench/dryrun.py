"""A full-size dry run: will a chapter's ``colab`` configuration fit a 16 GB T4?

For a method of :mod:`clipadapt.methods.registry` it builds the run exactly as a chapter
does under the profile (the real architecture with random weights read from a file, the
real image size, frame count, class count and recipe, the data in their real formats from
:mod:`clipadapt.data.fixtures`), runs **two training steps and one evaluation batch on the
CPU** and counts the bytes the tensors hold (:class:`clipadapt.core.live_memory.LiveTensors`:
the CLIP the chapter keeps, the method's copy, gradients, optimiser state, saved
activations, the batch), under the recipe's precision (autocast to a 2-byte float where the
recipe trains in mixed precision, ``amp``: the CPU's bfloat16 stands in for the T4's float16, the
same size; an official ``fp16`` row runs its float16 CLIP on the CPU as it is).

A full batch of twelve 224 px frames per video does not fit this machine's memory in a
CPU training step (VoP at 32 videos holds tens of GB of activations), so every run is
measured at two small batches and the peak extrapolated in a straight line to the recipe's
batch: everything that grows with the batch (activations, inputs) grows in proportion to
it, everything else (weights, gradients, optimiser state, class prompts) does not.
``tests/test_dryrun.py`` checks the line against a third batch. What a run builds once and
keeps (the class prompts' text features, a frozen encoder's stored features: megabytes) is
built in a warm-up pass before the two and not counted.

The T4 estimate adds what no tensor owns: the CUDA context and cuBLAS's workspace
(:data:`CONTEXT_BYTES`) and the caching allocator's rounding (:data:`ALLOCATOR_SLACK`),
both assumptions, not measured here. A configuration *fits* when the estimate leaves 20 %
of the T4's memory free (:data:`T4_BYTES`).
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import experiments, profiles
from ..core import models
from ..core.features import BATCH as IMAGE_EVAL_BATCH
from ..core.live_memory import LiveTensors
from ..data import fixtures
from ..experiments import settings as settings_of
from ..methods import registry
from ..tasks.retrieval import VIDEO_BATCH
from ..training import driver, recipes

MIB = 2**20
T4_BYTES = 15102 * MIB  # what torch reports as a T4's total memory (Colab: total_memory=15102MB)
HEADROOM = 0.2  # a configuration must leave this share of the T4 free
CONTEXT_BYTES = 400 * MIB  # CUDA context and cuBLAS workspace (an assumption)
ALLOCATOR_SLACK = 0.10  # the caching allocator's rounding and fragmentation (an assumption)
PROBES = {"classification": (2, 4), "retrieval": (1, 2), "multilabel": (2, 4), "multitask": (2, 4)}  # loader units
EVAL_BATCH = {"classification": IMAGE_EVAL_BATCH, "retrieval": VIDEO_BATCH, "multilabel": IMAGE_EVAL_BATCH,
              "multitask": IMAGE_EVAL_BATCH}

@dataclass
class Measured:
    """Peak bytes of one (method, variant) at its recipe's batch, from two probe batches."""

    method: str
    variant: str | None
    batch: int  # the recipe's batch, in loader units (videos; images)
    precision: str
    probes: tuple[int, int]
    train_probe: tuple[int, int]  # peak bytes of two training steps at each probe batch
    eval_probe: tuple[int, int]  # peak bytes of one evaluation batch at each probe batch
    eval_batch: int
    full_batch: bool = False  # every step takes the whole training set (of the fixtures: see dry_profile)

    @staticmethod
    def _line(probe: tuple[int, int], peaks: tuple[int, int], at: int) -> float:
        (a, b), (pa, pb) = probe, peaks
        return pb + (pb - pa) / (b - a) * (at - b) if b != a else float(pb)

    @property
    def train(self) -> float:
        return self._line(self.probes, self.train_probe, self.batch)

    @property
    def eval(self) -> float:
        return self._line(self.probes, self.eval_probe, self.eval_batch)

    @property
    def peak(self) -> float:
        return max(self.train, self.eval)

    @property
    def t4(self) -> float:
        return t4_estimate(self.peak)

    @property
    def fits(self) -> bool:
        return self.t4 <= (1 - HEADROOM) * T4_BYTES

    def row(self) -> dict:
        label = self.method if self.variant is None else f"{self.method} ({self.variant})"
        batch = f"all {self.batch}" if self.full_batch else str(self.batch or "-")
        return {"run": label, "batch": batch, "precision": self.precision,
                "train GB": self.train / 1e9, "eval GB": self.eval / 1e9,
                "T4 estimate GB": self.t4 / 1e9, "of T4 (%)": 100 * self.t4 / T4_BYTES,
                "fits": "yes" if self.fits else "NO"}


def t4_estimate(peak: float) -> float:
    """Bytes a T4 would need for ``peak`` bytes of tensors (the allowances above)."""
    return peak * (1 + ALLOCATOR_SLACK) + CONTEXT_BYTES


def dry_profile(profile: profiles.Profile) -> tuple[profiles.Profile, settings_of.Settings]:
    """``profile`` on the CPU with random weights from a file and real-format fixtures, and
    the settings its dry run reads: the fixtures' sizes unchecked, every class of each suite
    dataset, and a small multi-label test world (its images stay on the CPU; only its features
    are stored). A full-batch run (a linear probe on cached features) steps on the fixtures'
    whole training set: EuroSAT's 16 shots of 10 classes, as the chapter's; one picture of each
    of General-10's classes where chapter 7 has 16 (a few MB of features more)."""
    p = profiles.need(profile)
    dry = p.replace(name=f"{p.name}-dry-run", clip_pretrained=models.RANDOM_FILE, device="cpu", based_on=p.name)
    s = settings_of.of(p)
    s = s.replace(videos=s.videos.replace(check_sizes=False), suites=dataclasses.replace(s.suites, classes=None),
                  scenes=settings_of.Scenes(test=16))
    return dry, s


def _probe(run: driver.Run, clip, units: int, eval_units: int) -> tuple[int, int]:
    """Peak bytes of two training steps at ``units`` loader units, then of one evaluation
    batch of ``eval_units`` inputs (the task's example repeated), with gradients and
    optimiser state still held as they are when a chapter evaluates."""
    if run.loader is not None:
        run.loader = dataclasses.replace(run.loader, per_batch=units)
    held = [clip, run.module] + ([run.trainer.optimizer] if run.trainer is not None else [])
    with LiveTensors(*held) as live:
        if run.trainer is not None:
            run.module.train()
            for step in range(2):
                run.trainer.train_step(run.batch(step))
        train = live.peak
        live.reset_peak()
        run.module.eval()
        with torch.no_grad():
            x = run.task.example(run.device)
            run.task.encoder(run.module)(x.expand(eval_units, *x.shape[1:]).contiguous())
        return train, live.peak


def build(method: str, variant: str | None, profile: profiles.Profile, root: Path, workdir: Path,
          dataset: str | None = None, recipe: recipes.Recipe | None = None):
    """The run a chapter makes under ``profile`` (on the CPU, data under ``root``; ``recipe``:
    another than the profile's): ``(run, clip)``. The task is the method's default
    experiment's (:func:`clipadapt.experiments.default`), as ``reproduce METHOD`` builds it."""
    spec = registry.get(method)
    prof, settings = dry_profile(profile)
    if spec.task == "multitask":  # the fixtures hold one training picture per class
        settings = settings.replace(fewshot=dataclasses.replace(settings.fewshot, shots=(1,), test_per_class=1))
    clip, preprocess, tokenizer = models.load_clip(prof.clip_model, prof.clip_pretrained, device="cpu")
    bench = experiments.Workbench(prof, clip, preprocess, tokenizer, root, workdir, settings=settings)
    bench.budgets["multilabel_train"] = 16  # the dry run's world (the recipe keeps the profile's)
    if dataset is not None:
        bench.read_dataset(dataset, spec.long_video_frames)
    default = experiments.default(spec.name, variant).under(prof)
    task = bench.task(default, 0, bench.points(default)[-1].get("shots"))  # a sweep's largest shot count
    recipe = recipe or recipes.get(spec.name, profile, variant)
    run = driver.prepare(spec.name, clip, tokenizer, task, variant=variant, recipe=recipe, profile=prof)
    if run.trainer is not None:  # "amp" autocasts to the CPU's 2-byte float; "fp16" runs float16 already
        run.trainer.use_amp = recipe.precision == "amp"
        run.trainer.amp_dtype = torch.bfloat16
    return run, clip


def measure(method: str, variant: str | None, profile: profiles.Profile, dataset: str | None = None,
            probes: tuple[int, int] | None = None, recipe: recipes.Recipe | None = None) -> Measured:
    """Dry-run ``method`` (``variant``) as ``profile``'s chapter runs it on ``dataset`` (a
    retrieval benchmark; None: the profile's), on real-format fixtures (see the module)."""
    torch.manual_seed(0)
    spec = registry.get(method)
    variant = spec.variant(variant)
    with tempfile.TemporaryDirectory() as tmp:
        root = fixtures.write_all(Path(tmp) / "data", settings_of.of(profile).suites.datasets)
        if dataset is not None:
            fixtures.write_retrieval_sets(root)
        run, clip = build(spec.name, variant, profile, root, Path(tmp) / "work", dataset, recipe)
        full = run.loader.per_batch if run.loader is not None else 0
        if spec.task == "multilabel" and not run.recipe.full_batch:  # the dry run's world is smaller than a batch
            full = run.recipe.batch_size
        a, b = probes or PROBES[spec.task]
        if full and full <= b:  # small enough to measure at its own size
            a, b = max(1, full // 2), full
        _probe(run, clip, 1, 1)  # warm-up: what a run builds once (class features, caches) is built here
        first, second = _probe(run, clip, a, a), _probe(run, clip, b, b)
        return Measured(spec.name, variant, full, run.recipe.precision if full else "-", (a, b),
                        (first[0], second[0]), (first[1], second[1]), EVAL_BATCH[spec.task],
                        bool(full) and run.recipe.full_batch)


def format_rows(rows: list[tuple[str, Measured]]) -> str:
    """The dry-run table: one line per run, its chapter first."""
    head = (f"{'chapter':<22}{'run':<28}{'batch':>8}{'precision':>10}{'train GB':>9}{'eval GB':>8}"
            f"{'T4 GB':>7}{'of T4':>7}  fits")
    lines = [head]
    for chapter, m in rows:
        r = m.row()
        lines.append(f"{chapter:<22}{r['run']:<28}{r['batch']:>8}{r['precision']:>10}{r['train GB']:>9.2f}"
                     f"{r['eval GB']:>8.2f}{r['T4 estimate GB']:>7.2f}{r['of T4 (%)']:>6.0f}%  {r['fits']}")
    lines.append(f"T4: {T4_BYTES / 1e9:.2f} GB as torch reports it; estimate = tensors' peak x {1 + ALLOCATOR_SLACK:.2f}"
                 f" + {CONTEXT_BYTES / 1e9:.2f} GB (CUDA context; both assumed); fits = at most"
                 f" {100 * (1 - HEADROOM):.0f} % of the T4")
    return "\n".join(lines)
