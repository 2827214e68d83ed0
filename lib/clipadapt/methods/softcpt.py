"""SoftCPT: prompts for many few-shot tasks at once, generated from the tasks' names by a
task-shared meta network (Ding et al., Neurocomputing 2024; arXiv 2208.13474).

The meta network has two halves:

* the task prompt ``[SOT] [U]_1 ... [U]_M [task name] . [EOT]`` with M = 4 learned *task
  context* tokens, read by the frozen text encoder into a task feature ``f_t`` (not
  normalised) -- a CoOp over the task names (:class:`clipadapt.methods.coop.CoOp`);
* a bias-free linear map ``W`` (initialised N(0, 0.02^2)) from ``f_t`` to an L = 16 token
  context, ``ctx_t = reshape(f_t W, (L, width))``.

Task ``t``'s class prompts are CoOp's ``[SOT] [ctx_t] [class name] . [EOT]``, assembled by
one parameter-free CoOp per task. ``U`` and ``W`` are shared by every task: tasks with
similar names get similar contexts, and every task's gradient trains them ("soft" sharing).

Variants (first pair: the class side; second pair: the task context):

======  =====================================================================================
NATA    one context per task; one ``U`` for all tasks (the default)
NATS    one context per task; one ``U`` per task
CATA    one context per class: a class prompt ``[C]_1..[C]_4 [class name]`` (``C`` shared by
        all classes) is encoded too, concatenated with its task's feature and mapped by ``W``
CSTA    as CATA, with one ``C`` per class
======  =====================================================================================

The hard-sharing baselines of the paper, trained in the same joint loop:
:class:`MultiTaskCoOp` ``"CA"`` (a CoOp context per task; the tasks are independent) and
``"MT"`` (one CoOp context for every class of every task). Every module here returns
logits over the classes of *all* tasks, concatenated in task order; the task
(:class:`clipadapt.tasks.MultiTaskClassificationTask`) keeps each sample to its own task's
classes.

Under the official ``fp16`` (:mod:`clipadapt.core.precision`) the contexts ``U``, ``C`` and
CoOp's are made in float16, as every prompt learner of SoftCPT's code makes them in
``clip_model.dtype``; ``W`` stays float32 and is cast to float16 where it is used, as its
``PromptGen`` keeps it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core import features, models, prompting
from ..data import names
from . import probe_search
from .baselines import PROBES
from .coop import CoOp
from .protocol import Method
from .spec import MethodSpec, register

VARIANTS = ("NATA", "NATS", "CATA", "CSTA")
SHARING = ("CA", "MT")

# the paper's Table (journal version, RN50, General-10; accuracy %, shots 1/2/4/8/16 and the
# mean of the five) -- cited, not measured here; #params as printed there
PAPER_COLUMNS = ("#params", "1", "2", "4", "8", "16", "Avg")
PAPER_GENERAL10 = {
    "ZS-CLIP": ("-", None, None, None, None, None, 58.29),
    "LP-CLIP": ("-", 37.31, 49.05, 59.15, 66.53, 72.77, 56.96),
    "CoOp-CA": ("81,920", 59.51, 61.83, 66.22, 70.39, 73.98, 66.39),
    "CoOp-MT": ("8,192", 58.35, 60.86, 63.04, 66.06, 68.83, 63.43),
    "SoftCPT-NATS": ("8,421,376", 59.23, 62.70, 67.67, 71.10, 74.51, 67.04),
    "SoftCPT-NATA": ("8,392,704", 59.47, 63.18, 67.65, 71.15, 74.17, 67.12),
}


def encode(clip: nn.Module, emb: torch.Tensor, eot: torch.Tensor) -> torch.Tensor:
    """:func:`clipadapt.core.prompting.encode_text_embeddings`, reading only the tokens up to the
    last pooled one when the text encoder is causal: nothing after a token changes its
    feature, so the result is the same and the padding costs nothing."""
    if getattr(clip, "attn_mask", None) is not None and getattr(clip, "text_pool_type", "argmax") != "last":
        emb = emb[:, : int(eot.max()) + 1]
    return prompting.encode_text_embeddings(clip, emb, eot)


class TaskClassPrompts(Method):
    """The class prompts of every task around contexts given per task: one CoOp per task
    (sharing one frozen CLIP) assembles them, and one pass of the text encoder reads them all.

    ``tasks`` is a list of ``{"name", "classnames", "template"}``.
    """

    def __init__(self, clip: nn.Module, tokenizer, tasks: list[dict], n_ctx: int = 16):
        super().__init__()
        if not tasks:
            raise ValueError("a multi-task method needs at least one task")
        self.clip = models.freeze(clip)
        self.n_ctx = n_ctx
        self.coops = nn.ModuleList(CoOp(clip, tokenizer, t["classnames"], n_ctx=n_ctx) for t in tasks)
        self.sizes = [len(t["classnames"]) for t in tasks]
        for c in self.coops:
            c.ctx.requires_grad_(False)  # the assembler's own context is unused unless a subclass says so
        self.register_buffer("eot", torch.cat([prompting.eot_index(c.ids, clip) for c in self.coops]), persistent=False)

    @property
    def width(self) -> int:
        return self.clip.token_embedding.weight.shape[1]

    def contexts(self) -> list[torch.Tensor]:
        """Per task: ``(L, width)`` or ``(n_cls_t, L, width)``."""
        raise NotImplementedError

    def class_features(self) -> torch.Tensor:
        """Text features of every task's classes ``(sum_t n_cls_t, embed_dim)``, not normalised."""
        emb = torch.cat([c.prompt_embeddings(ctx) for c, ctx in zip(self.coops, self.contexts())])
        return encode(self.clip, emb, self.eot)

    frozen_image_encoder = True

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return features.encode_images(self.clip, images)  # normalised

    def classifier(self):
        """``image features -> logits (B, sum_t n_cls_t)``, the text side computed once."""
        cls = self.class_features()
        return lambda feats: features.scaled_cosine(feats, cls, self.clip)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier()(self.encode_image(images))


class MultiTaskCoOp(TaskClassPrompts):
    """CoOp-CA (``sharing="CA"``: a context per task) or CoOp-MT (``"MT"``: one context)."""

    def __init__(self, clip, tokenizer, tasks, n_ctx: int = 16, sharing: str = "CA"):
        super().__init__(clip, tokenizer, tasks, n_ctx)
        if sharing not in SHARING:
            raise ValueError(f"sharing must be one of {SHARING}, got {sharing!r}")
        self.sharing = sharing
        if sharing == "CA":
            for c in self.coops:
                c.ctx.requires_grad_(True)
        else:
            self.ctx = nn.Parameter(torch.empty_like(self.coops[0].ctx).normal_(std=0.02))  # (L, width)

    def contexts(self) -> list[torch.Tensor]:
        return [c.ctx for c in self.coops] if self.sharing == "CA" else [self.ctx] * len(self.coops)


class SoftCPT(TaskClassPrompts):
    def __init__(self, clip, tokenizer, tasks: list[dict], variant: str = "NATA", n_ctx: int = 16,
                 task_n_ctx: int = 4, class_n_ctx: int = 4):
        super().__init__(clip, tokenizer, tasks, n_ctx)
        if variant not in VARIANTS:
            raise ValueError(f"unknown SoftCPT variant {variant!r}; choose one of {VARIANTS}")
        self.variant = variant
        task_names = names.prompt_names(t["name"] for t in tasks)  # SoftCPT's mtcoop.py: '_' -> ' '
        if len(set(task_names)) != len(task_names):
            raise ValueError(f"task names must differ, got {task_names}")
        # task prompts [SOT] [U] [task name] . [EOT]: a CoOp over the task names, its context
        # shared by the tasks (TA) or one per task (TS), drawn from N(0, 0.02^2)
        self.task_prompts = CoOp(clip, tokenizer, task_names, n_ctx=task_n_ctx, class_specific=variant.endswith("TS"))
        embed_dim = self._embed_dim()
        in_dim = embed_dim
        if variant.startswith(("CA", "CS")):  # class prompts [C] [class name] . over all tasks' classes
            classnames = [name for t in tasks for name in t["classnames"]]
            self.class_prompts = CoOp(clip, tokenizer, classnames, n_ctx=class_n_ctx,
                                      class_specific=variant.startswith("CS"))
            self.register_buffer("task_of_class", torch.repeat_interleave(torch.tensor(self.sizes)),
                                 persistent=False)
            in_dim = 2 * embed_dim
        # the meta network's sub-network: float32 under every precision, cast to the features'
        # dtype where it is used (softcpt trainers/mtcoop.py PromptGen: `x @ self.proj.type(x.dtype)`)
        self.proj = nn.Linear(in_dim, n_ctx * self.width, bias=False)
        nn.init.normal_(self.proj.weight, std=0.02)
        self.proj.to(clip.token_embedding.weight.device)

    def _embed_dim(self) -> int:
        proj = self.clip.text_projection
        return proj.out_features if isinstance(proj, nn.Linear) else proj.shape[1]

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        """``x (N, in_dim) -> (N, L * width)`` through the meta network's weight, in ``x``'s dtype."""
        return F.linear(x, self.proj.weight.to(x.dtype))

    def task_features(self) -> torch.Tensor:
        """``(T, embed_dim)``: the task prompts through the frozen text encoder (not normalised)."""
        tp = self.task_prompts
        return encode(self.clip, tp.prompt_embeddings(), prompting.eot_index(tp.ids, self.clip))

    def contexts(self) -> list[torch.Tensor]:
        f = self.task_features()  # (T, E)
        if not self.variant.startswith(("CA", "CS")):
            ctx = self._project(f).view(len(self.sizes), self.n_ctx, self.width)  # (T, L, width)
            return list(ctx)
        cp = self.class_prompts
        cls = encode(self.clip, cp.prompt_embeddings(), prompting.eot_index(cp.ids, self.clip))  # (sum C, E)
        ctx = self._project(torch.cat([cls, f[self.task_of_class]], dim=1))  # (sum C, L * width)
        return list(ctx.view(-1, self.n_ctx, self.width).split(self.sizes))  # per task (C_t, L, width)


class MultiTaskZeroShot(Method):
    """Nothing trains: each task's class prompts (its own template) through the frozen CLIP."""

    def __init__(self, clip: nn.Module, tokenizer, tasks: list[dict]):
        super().__init__()
        self.clip = models.freeze(clip)
        prompts = [p for t in tasks for p in names.prompts(t["template"], t["classnames"])]
        with torch.no_grad():
            self.register_buffer("cls", features.encode_texts(clip, tokenizer, prompts), persistent=False)

    frozen_image_encoder = True

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return features.encode_images(self.clip, images)  # normalised

    def classifier(self):
        return lambda feats: features.scaled_cosine(feats, self.cls, self.clip)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier()(self.encode_image(images))


class MultiTaskLinearProbe(MultiTaskZeroShot):
    """A linear layer per task on frozen image features (one layer over all tasks' classes;
    the own-task loss keeps them apart), one of baselines.PROBES: ``"zero-shot start"``
    (normalised features, initialised at the zero-shot classifier, gradient steps) or
    ``"sklearn"`` (the official probe on the raw features, fitted task by task by
    :meth:`fit_task`, float64)."""

    def __init__(self, clip: nn.Module, tokenizer, tasks: list[dict], probe: str = "zero-shot start"):
        super().__init__(clip, tokenizer, tasks)
        if probe not in PROBES:
            raise ValueError(f"unknown probe {probe!r}; choose one of {PROBES}")
        self.probe = probe
        self.sizes = [len(t["classnames"]) for t in tasks]
        self.head = nn.Linear(self.cls.shape[1], self.cls.shape[0]).to(self.cls.device)
        with torch.no_grad():
            if probe == "sklearn":
                self.head = self.head.double()  # fitted by fit_task, in scikit-learn's float64
                self.head.weight.zero_()
                self.head.bias.zero_()
            else:
                self.head.weight.copy_(self.cls * clip.logit_scale.exp().item())
                self.head.bias.zero_()

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        if self.probe == "sklearn":  # the official probe's raw features (softcpt lpclip/feat_extractor.py:182)
            return features.encode_batched(lambda x: self.clip.encode_image(x.to(self.cls.device)), images)
        return features.encode_images(self.clip, images)  # normalised

    def fit_task(self, i: int, x: torch.Tensor, y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor,
                 score=probe_search.accuracy) -> probe_search.Search:
        """Fit task ``i``'s rows of the head: the official probe on its training features
        ``x (N, D)`` and labels ``y`` (within the task), C chosen on the validation set by ``score``."""
        if self.probe != "sklearn":
            raise ValueError(f"fit_task fits the official probe; this probe is {self.probe!r}")
        found = probe_search.search(x.cpu().numpy(), y.cpu().numpy(), val_x.cpu().numpy(), val_y.cpu().numpy(),
                                    score=score)
        w, b = probe_search.weights(found.classifier, self.sizes[i])
        o = sum(self.sizes[:i])
        with torch.no_grad():
            self.head.weight[o:o + self.sizes[i]] = torch.from_numpy(w)
            self.head.bias[o:o + self.sizes[i]] = torch.from_numpy(b)
        return found

    def classifier(self):
        if self.probe == "sklearn":
            return lambda feats: self.head(feats.to(self.head.weight.dtype))
        return self.head


def _builder(kind: str):
    """The builder of one of chapter 7's methods: ``kind`` is "zero-shot", "linear probe",
    "SoftCPT", or the CoOp sharing "CA" / "MT"."""
    def build(clip, tokenizer, context, options, variant):
        tasks = context["tasks"]
        if kind == "zero-shot":
            return MultiTaskZeroShot(clip, tokenizer, tasks)
        if kind == "linear probe":
            return MultiTaskLinearProbe(clip, tokenizer, tasks, options.get("probe", "zero-shot start"))
        if kind == "SoftCPT":
            return SoftCPT(clip, tokenizer, tasks, variant, n_ctx=options.get("n_ctx", 16),
                           task_n_ctx=options.get("task_n_ctx", 4), class_n_ctx=options.get("class_n_ctx", 4))
        return MultiTaskCoOp(clip, tokenizer, tasks, n_ctx=options.get("n_ctx", 16), sharing=kind)

    return build


register(MethodSpec("ZS-CLIP", "multitask", _builder("zero-shot"), "every task zero-shot with its own template"))
register(MethodSpec("LP-CLIP", "multitask", _builder("linear probe"), "a linear probe per task on frozen features"))
register(MethodSpec("CoOp-CA", "multitask", _builder("CA"), "a CoOp context per task, trained jointly "
                    "(clipadapt.methods.softcpt)"))
register(MethodSpec("CoOp-MT", "multitask", _builder("MT"), "one CoOp context shared by every task"))
register(MethodSpec("SoftCPT", "multitask", _builder("SoftCPT"), "contexts generated from the task names by a "
                    "task-shared meta network (clipadapt.methods.softcpt)", variants=VARIANTS))
