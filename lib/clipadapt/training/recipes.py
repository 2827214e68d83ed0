"""Recipes: how each method trains under each profile, as data.

A :class:`Recipe` holds the optimiser (a ``torch.optim`` name, its arguments, the weight-
decay rule, learning rates of parameter groups), the schedule (a ``torch.optim.lr_scheduler``
shape, its unit and warm-up: :mod:`clipadapt.training.optim`), the budget (steps, or epochs
with a floor), the batch, the training augmentation (:mod:`clipadapt.data.augment`) and
whether frozen features may be cached, the precision, and the method's own settings
(``options``). ``sources`` says where each value comes from.

* Under ``colab`` and ``paper`` a row starts from the official recipe
  (:mod:`clipadapt.training.official`: every value with its paper section or official file
  and line) and every change carries its reason (``"ours: ..."``): the budget of a T4
  session, a rate the papers never published, a precision the loop cannot run.
* Under ``tiny`` the rows keep the values chosen on the synthetic worlds for the tiny CLIP
  on the CPU (the chapters' numbers and tests/test_golden.py stand on them): AdamW with a
  linear warm-up and a cosine for every method, no augmentation and cached features of
  frozen encoders, each with its reason (:data:`TINY_REASONS`).

``get("CoOp", "colab")`` returns the recipe a chapter runs; :func:`card` prints it beside
the official one, every deviation with its reason.
"""

from __future__ import annotations

import math
import textwrap
from typing import Mapping

from .. import profiles
from ..methods import scpnet
from .official import BACKBONE, NOTES, OFFICIAL
from .recipe import KEYS, Recipe, every, show  # noqa: F401  (the table's row, re-exported)

def _official(method: str, variant: str | None) -> Recipe:
    rows = OFFICIAL[method]
    return rows[variant] if variant in rows else rows[None]


TINY_REASONS = {
    "optimizer": "tiny CLIP on the CPU: AdamW for every method, so the chapters compare methods, not optimisers",
    "lr": "chosen on the synthetic worlds for the tiny CLIP (chapters 2 and 4)",
    "weight_decay": "the tiny runs' setting (short runs; decay barely acts)",
    "schedule": "linear warm-up then cosine, one step at a time, for every method (CPU minutes)",
    "warmup": "a few steps, at most a tenth of the run",
    "budget": "the tiny profile's budget: the whole book runs in minutes on 2 CPU cores",
    "batch_size": "the tiny world's batch",
    "augment": "none; features of a frozen encoder are cached once: the synthetic pictures are drawn "
               "centred and the CPU budget has no room for an encoder pass per step",
    "precision": "float32 on the CPU (autocast only acts on CUDA)",
    "grad_clip": "as the official row where it clips, else none",
}


def _tiny(row: Recipe) -> Recipe:
    return row.replace(sources={**TINY_REASONS, **{f"options.{k}": "the tiny CLIP's setting (see the chapter)"
                                                   for k in row.options}})


def _tiny_table(p: profiles.Profile) -> dict[str, dict[str | None, Recipe]]:
    """The tiny CLIP's rows: the values the chapters' tiny runs were tuned and checked with."""
    few = Recipe(epochs=p.fewshot_epochs, min_steps=p.fewshot_min_steps, batch_size=32)
    lr = {"linear probe": 1e-2, "CoOp": 2e-2, "VPT-deep": 1e-2, "LoRA": 2e-3, "full fine-tune": 2e-4}
    video = Recipe(steps=p.video_steps, batch_size=p.video_batch, weight_decay=0.2, warmup=20, grad_clip=1.0)
    pool_lr = {"full": 1e-4, "partial": 5e-4, "lora": 2e-3}
    # VoP: twice the baselines' steps (prompts start from nothing); the tiny CLIP has 3
    # layers, so VoP^F keeps 1 frame-level layer there (8 of 12 on ViT-B/32, as the paper)
    vop = video.replace(steps=2 * p.video_steps, lr=1e-2, options={"ks": 1})
    # SoftCPT and its baselines train jointly on the union of the tasks' shots: L = 4 and 10
    # epochs, at least 80 steps, because every step reads every class prompt of every task
    # through the text encoder. A fixed 30 steps (the earlier recipe) was under-training: at
    # 16 shots of 12 tasks it is under 2 epochs, and CoOp-CA moved only from 70 to 73 %
    # between 1 and 16 shots; at 120 steps it reached 76 % and SoftCPT 80 % (seed 0, measured)
    joint = Recipe(epochs=10, min_steps=80, batch_size=32, lr=2e-2, warmup=8)
    # SCPNet on the tiny CLIP: the image encoder stays frozen (SCPNet's switch; the runs then
    # train on stored features) and the supervised loss is partial BCE, because the headline
    # setting here keeps a proportion of the labels (SPLC, the official loss, is for a single
    # positive per image, where chapter 6 uses it); the official EMA (0.82 of itself per epoch).
    # The prior is given leverage on the scene world (chapter 6 measures it): the graph joins
    # each class to its top-5, the size of the world's groups (a colour's five shapes), with
    # weight p = 0.5 on the neighbours; top-20 with p = 0.2 (the official proportions, as
    # COCO's 62 of 80) spreads a fifth of each row almost evenly over two thirds of the classes
    scp = {"topk": 5, "reweight_p": 0.5, "temperature": 0.2, "loss": "partial bce", "hard_k": 2,
           "train_image_encoder": False, "ema_decay": scpnet.ema_decay(math.ceil(p.multilabel_train / 32))}
    rows = {
        "SCPNet": {None: Recipe(steps=p.multilabel_steps, lr=1e-3, batch_size=32, weight_decay=1e-4, warmup=10,
                                options=scp)},
        "zero-shot": {None: Recipe(steps=0)},
        "linear probe": {None: few.replace(lr=lr["linear probe"], full_batch=True)},
        "CoOp": {None: few.replace(lr=lr["CoOp"], options={"n_ctx": 16, "init": "a photo of a"})},
        "VPT-deep": {None: few.replace(lr=lr["VPT-deep"], options={"prompts": 8})},
        "LoRA": {None: few.replace(lr=lr["LoRA"], options={"rank": 8})},
        "full fine-tune": {None: few.replace(lr=lr["full fine-tune"])},
        "mean pooling": {"none": Recipe(steps=0),
                         **{v: video.replace(lr=pool_lr[v], options={"rank": 8, "last_layers": 2}) for v in pool_lr}},
        "VoP": {None: vop},
        # TempMe: mean pooling's rates on the tiny CLIP; the schedule is the model's own
        "TempMe": {v: video.replace(lr=pool_lr[v], options={"rank": 8, "schedule": p.clip_model})
                   for v in ("lora", "full")},
        "ZS-CLIP": {None: Recipe(steps=0)},
        # the probe starts at the zero-shot weights times CLIP's temperature (~100): on the
        # tiny world it needs a larger step to move within 30 steps (measured)
        "LP-CLIP": {None: joint.replace(lr=0.3, full_batch=True)},
        **{m: {None: joint.replace(options={"n_ctx": 4})} for m in ("CoOp-CA", "CoOp-MT")},
        "SoftCPT": {None: joint.replace(options={"n_ctx": 4, "task_n_ctx": 4, "class_n_ctx": 4})},
    }
    return {m: {v: _tiny(r) for v, r in vs.items()} for m, vs in rows.items()}


T4 = "one T4 session (profiles.colab)"
CHECKPOINTING = ("activation checkpointing (the same gradients for about a third more compute): without it, the "
                 "full-size dry run (python -m clipadapt.bench --t4) leaves less than 20% of a T4 free")
AMP = "float32 weights under autocast: the loop keeps float32 master weights (the official code casts CLIP to fp16)"
CROP = ("crops are drawn from the evaluation transform's 224-px centre crop (the task keeps preprocessed "
        "pictures), not from the whole picture")


def _real_table(p: profiles.Profile) -> dict[str, dict[str | None, Recipe]]:
    """The colab and paper rows: the official recipes, with each change and its reason."""
    colab = p.name != "paper"
    o = _official
    few = dict(epochs=p.fewshot_epochs, min_steps=p.fewshot_min_steps)
    few_why = {"budget": f"{p.fewshot_epochs} epochs (at least {p.fewshot_min_steps} steps): "
                         + (T4 if colab else "the 16-shot setting of the chapter's largest shot count"),
               "augment": CROP}

    def precision(row: Recipe) -> tuple[dict, dict]:
        if row.precision == "fp16":
            return {"precision": "amp"}, {"precision": AMP}
        if row.precision == "fp32" and colab:
            return {"precision": "amp"}, {"precision": f"{T4}: mixed precision halves the time"}
        return {}, {}

    def real(row: Recipe, reasons: dict, **changes) -> Recipe:
        ch, why = precision(row)
        return row.deviate({**why, **reasons}, **{**ch, **changes})

    lp_why = {"optimizer": "the book's one loop takes gradient steps: AdamW on the full batch stands in for "
                           "sklearn's L-BFGS", "lr": "a step size for that AdamW (L-BFGS needs none)",
              "weight_decay": "no L2 search on a validation split (the few-shot sets here have none)",
              "schedule": "the loop's cosine", "warmup": "the loop's cosine, no warm-up",
              "budget": f"{p.fewshot_epochs} full-batch steps (at least {p.fewshot_min_steps})",
              "precision": "float32 features, as sklearn's"}
    lp_common = dict(optimizer="adamw", lr=1e-3, weight_decay=0.0, schedule="cosine", warmup_kind="none",
                     batch_size=32, precision="fp32", **few)
    lora_steps = {"budget": few_why["budget"] + "; one epoch-based budget for every method",
                  "options.rank": "rank 8, TempMe's (chapter 5), so that Parts I and II tune the same adapter",
                  "augment": CROP}
    video = (dict(steps=p.video_steps, batch_size=p.video_batch) if colab else {})
    video_why = ({"budget": f"{p.video_steps} steps: {T4}", "batch_size": f"{p.video_batch}: {T4}"}
                 if colab else {})
    vop_lr = {"lr": "VoP never published its rates; 1e-3 trains prompts from nothing in a short run"}
    pool_lr = {"full": (1e-5, f"a rate that moves CLIP within {p.video_steps} steps (1e-7 leaves it as it was)"),
               "partial": (1e-4, "VoP never published its rates"),
               "lora": (1e-3, f"a rate that moves the adapters within {p.video_steps} steps")}

    def pool(v: str) -> Recipe:
        row = o("mean pooling", v)
        if v == "full" and not colab:
            return real(row, video_why, **video)
        lr, why = pool_lr[v]
        if v == "full":  # every weight trains on 12 frames of 32 videos: too much for a T4 as it is
            return real(row, {**video_why, "lr": f"{lr:g}: {why}", "options.checkpointing": CHECKPOINTING},
                        lr=lr, options={**row.options, "checkpointing": True}, **video)
        return real(row, {**video_why, "lr": f"{lr:g}: {why}"}, lr=lr, **video)
    ml = dict(steps=p.multilabel_steps, batch_size=128)
    scp_opts = {**o("SCPNet", None).options, "topk": 20,
                "ema_decay": scpnet.ema_decay(math.ceil(p.multilabel_train / 128)),
                "loss": "splc" if not colab else "partial bce", "train_image_encoder": not colab}
    scp_why = {"budget": f"{p.multilabel_steps} steps on the scene world's {p.multilabel_train} pictures",
               "options.topk": "20 of the scene world's 30 classes, as COCO's 62 of 80",
               "options.ema_decay": "the official rule (0.82 per epoch) at this run's steps per epoch",
               "augment": "the task's weak view crops an area of (0.5, 1) where the official RandomResizedCrop "
                          "takes (0.08, 1); the strong view is FixMatch's RandAugment as the official one"}
    scp_lr = {}
    if colab:
        scp_lr = {"lr": 1e-3, "group_lrs": {}}
        scp_why["lr"] = ("1e-3 for the prompt and the graph alike: only they train on the frozen encoder (the "
                         "official 3e-5 and 1e-5 fine-tune the whole RN50 for 60 epochs)")
        scp_why.update({"options.loss": "partial BCE: the headline setting here keeps 10% of the labels, SPLC is "
                                        "for a single positive", "options.train_image_encoder":
                        f"frozen image encoder: {T4} (chapter 6's ablation trains many runs)"})
    mt_steps = dict(steps=p.multitask_steps) if p.multitask_steps else {}
    mt_why = {"budget": f"{p.multitask_steps} joint steps: {T4}"} if p.multitask_steps else {}
    mt_lp = o("LP-CLIP", None)
    return {
        "zero-shot": {None: real(o("zero-shot", None), {})},
        "linear probe": {None: real(o("linear probe", None), lp_why, full_batch=True, **lp_common)},
        "CoOp": {None: real(o("CoOp", None), few_why, **few)},
        "VPT-deep": {None: real(o("VPT-deep", None), {**few_why, "batch_size": "32, CoOp's: 128 exceeds the "
                                                      "16-shot sets' size"}, batch_size=32, **few)},
        "LoRA": {None: real(o("LoRA", None), lora_steps, steps=None, options={"rank": 8}, **few)},
        "full fine-tune": {None: real(o("full fine-tune", None), {**lora_steps, "lr": "1e-5: every weight moves; "
                                                                 "2e-4 (LoRA's) breaks the pre-trained CLIP"},
                                      steps=None, lr=1e-5, **few)},
        "mean pooling": {"none": real(o("mean pooling", "none"), {}),
                         **{v: pool(v) for v in ("full", "partial", "lora")}},
        "VoP": {None: real(o("VoP", None), {**video_why, **vop_lr}, lr=1e-3, **video)},
        "TempMe": {"lora": real(o("TempMe", "lora"), {**video_why, "options.schedule": f"{p.clip_model}'s"},
                                options={"rank": 8, "schedule": p.clip_model}, **video),
                   "full": real(o("TempMe", "full"), {**video_why, **({"lr": "1e-5: a rate that moves CLIP within "
                                                                          f"{p.video_steps} steps"} if colab else {})},
                                options={"rank": 8, "schedule": p.clip_model}, **({"lr": 1e-5} if colab else {}),
                                **video)},
        "SCPNet": {None: real(o("SCPNet", None), scp_why, options=scp_opts, **scp_lr, **ml)},
        "ZS-CLIP": {None: real(o("ZS-CLIP", None), {})},
        "LP-CLIP": {None: real(mt_lp, {**lp_why, "budget": "50 full-batch steps (at least 200)", **mt_why},
                               full_batch=True,
                               **{**lp_common, "epochs": 50, "min_steps": 200}, **mt_steps)},
        **{m: {None: real(o(m, None), mt_why, **mt_steps)} for m in ("CoOp-CA", "CoOp-MT", "SoftCPT")},
    }


def _table(p: profiles.Profile) -> dict[str, dict[str | None, Recipe]]:
    """Every method's recipe under profile ``p``: ``{method: {variant or None: Recipe}}``."""
    from ..core.models import TINY_MODELS

    return _tiny_table(p) if p.clip_model in TINY_MODELS else _real_table(p)


def get(method: str, profile: str | profiles.Profile | None = None, variant: str | None = None) -> Recipe:
    """The recipe of ``method`` (and ``variant``) under ``profile``."""
    table = _table(profiles.get(profile))
    if method not in table:
        raise ValueError(f"no recipe for method {method!r}; methods with recipes: {', '.join(table)}")
    rows = table[method]
    if variant in rows:
        return rows[variant]
    if None in rows:
        return rows[None]
    raise ValueError(f"no recipe for {method!r} variant {variant!r}; variants with recipes: "
                     f"{', '.join(str(v) for v in rows)}")


def official(method: str, variant: str | None = None) -> Recipe:
    """The official recipe of ``method`` (``variant``), each value with its source."""
    if method not in OFFICIAL:
        raise ValueError(f"no official recipe for {method!r}; methods: {', '.join(OFFICIAL)}")
    return _official(method, variant)


# -- the recipe card --------------------------------------------------------------------------
def card(method: str, profile: str | profiles.Profile | None = None, variant: str | None = None,
         width: int = 80) -> str:
    """The official recipe of ``method`` beside the one ``profile`` runs, then each
    deviation with its reason and the sources of the official values."""
    p = profiles.get(profile)
    ours, off = get(method, p, variant), official(method, variant)
    keys = list(dict.fromkeys(off.source_keys() + ours.source_keys()))
    if off.steps == 0 and ours.steps == 0:  # nothing trains: no optimiser to show
        keys = ["budget", "precision", *(k for k in keys if k.startswith("options."))]
    name = method if variant is None else f"{method} ({variant})"
    wrap = lambda head, text: textwrap.wrap(text, width, initial_indent=head,  # noqa: E731
                                            subsequent_indent=" " * 6)
    lines = [f"Recipe card: {name}, profile {p.name}"]
    lines += wrap("  backbone: ", f"official {BACKBONE.get(method, '?')}; this run "
                                  f"{p.clip_model.replace('ViT-B-', 'ViT-B/')}")
    c1 = max(len(k) for k in keys) + 2
    c2 = (width - c1 - 2) // 2
    lines.append(f"  {'':<{c1}}{'official':<{c2}}this run")
    changed = []
    for k in keys:
        a, b = show(off, k), show(ours, k)
        same = a == b
        reason = ours.sources.get(k, "")
        # a change of value, or a difference the value's name does not show (a crop's scale)
        if not same or (reason.startswith("ours: ") and reason != off.sources.get(k)):
            changed.append(k)
        lines.append(f"  {k:<{c1}}{textwrap.shorten(a, c2 - 1):<{c2}}{'=' if same else textwrap.shorten(b, c2)}")
    if changed:
        lines.append("  deviations:")
        for k in changed:
            lines += wrap(f"    {k}: ", ours.sources.get(k, "(no reason given)"))
    lines.append("  sources of the official values:")
    by_text: dict[str, list[str]] = {}
    for k in keys:
        if k in off.sources:
            by_text.setdefault(off.sources[k], []).append(k)
    for text, ks in by_text.items():
        lines += wrap(f"    {', '.join(ks) if len(ks) < len(keys) else 'all'}: ", text)
    for note in NOTES.get(method, []):
        lines += wrap("  note: ", note)
    return "\n".join(lines)
