"""SCPNet: a label-to-label prior from CLIP for multi-label recognition with incomplete
labels (Ding et al., CVPR 2023; chapter 6).

* **The prior** (:func:`class_similarities`, :func:`relation_matrices`): cosines of the
  CLIP text features of the class names in the template ``"a photo of a {}."``, then the
  official post-processing -- keep the top-k of each row, zero the diagonal, rescale the
  rest of the row to sum to ``reweight_p`` (0.2) and set the diagonal to ``1 - reweight_p``
  (the graph's adjacency ``A``), then a row softmax of ``A / T``, masked to the top-k and
  renormalised (``S``, the distillation's smoothing). :func:`write_relation` (and
  ``python -m clipadapt.methods.scpnet``) writes the relation file for any class list and
  CLIP: the script the official repository lacks (its issue #2).
* **The model** (:class:`SCPNet`): CoOp prompts with 4 context tokens initialised from
  "a photo of a" (:mod:`clipadapt.methods.coop`), three bias-free graph layers
  ``d -> 2d -> 2d -> d`` with LeakyReLU(0.2) after the first two, adjacency ``A``, added to
  the prompt features (:class:`SemanticGraph`); logits = 10 x cosine; sigmoid probabilities.
  The image encoder is fine-tuned as in the official code (which freezes only the text
  encoder, so CLIP's unused temperature counts as trainable too); ``train_image_encoder=False``
  freezes both.
* **Training** (:meth:`SCPNet.training_loss`): the supervised loss on a weak view plus
  ``lambda_u`` x the prior-enhanced self-supervision (:func:`self_supervision`) between a
  second weak view and a strong view, with FlexMatch-style class thresholds
  (:func:`class_accuracy`); an exponential moving average of the weights, started from the
  weights before the first step and updated by :meth:`SCPNet.after_step` after each one, is
  what :meth:`SCPNet.averaged` gives to evaluation (the official ``ModelEma``).

Variants (the chapter's ablation): ``full`` (graph + self-supervision), ``baseline``
(neither), ``soft targets`` (self-supervision only), ``graph`` (graph only), ``shuffled
prior`` (full, with the prior's classes permuted).
"""

from __future__ import annotations

import argparse
import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core import ema, features, losses, models, prompting, seeds
from ..core.files import atomic_path
from ..data import names
from .coop import CoOp
from .protocol import KeepsState, Method, OwnTraining
from .spec import MethodSpec, register

VARIANTS = ("full", "baseline", "soft targets", "graph", "shuffled prior")
TEMPLATE = "a photo of a {}."
# the official README's mAP (%) per dataset: single positive label, RN50, image encoder fine-tuned (cited)
PAPER_SPML = {"COCO 2014": 76.4, "VOC 2012": 91.2, "NUS-WIDE": 62.0, "CUB": 25.7}
SUPERVISED = {"splc": losses.splc, "partial bce": losses.partial_bce, "masked bce": losses.masked_bce,
              "assume negative": losses.assume_negative}


# -- the prior -------------------------------------------------------------------------------
def class_similarities(clip: nn.Module, tokenizer, classnames, template: str = TEMPLATE) -> torch.Tensor:
    """Cosine similarities ``(C, C)`` of the CLIP text features of ``template`` filled with
    each class name (the raw relation file)."""
    t = features.encode_texts(clip, tokenizer, names.prompts(template, classnames))
    return (t @ t.t()).float().cpu()


def relation_matrices(relation: torch.Tensor, topk: int, reweight_p: float = 0.2,
                      temperature: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """SCPNet's post-processing of a raw relation ``(C, C)``: returns the graph adjacency
    ``A`` and the smoothing matrix ``S`` (rows of both sum to 1)."""
    C = relation.shape[0]
    if relation.shape != (C, C):
        raise ValueError(f"a relation must be square (C, C), got {tuple(relation.shape)}")
    if not 1 <= topk <= C:
        raise ValueError(f"topk must lie in [1, C={C}], got {topk}")
    r = relation.float().clone()
    outside = torch.ones(C, C, dtype=torch.bool).scatter_(1, r.topk(topk, dim=1).indices, False)
    eye = torch.eye(C, dtype=torch.bool)
    r[outside | eye] = 0
    a = r / r.sum(1, keepdim=True).clamp(min=1e-12) * reweight_p  # off-diagonal rows sum to reweight_p
    a[eye] = 1 - reweight_p
    s = torch.softmax(a / temperature, dim=1)  # every entry, the zeros too
    s = s.masked_fill(outside, 0)
    return a, s / s.sum(1, keepdim=True)


def shuffled(relation: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The control prior: the same matrix with its classes permuted (rows and columns), so
    that its structure no longer matches which labels go together."""
    perm = torch.randperm(len(relation), generator=seeds.generator(seed, "scpnet", "shuffle"))
    return relation[perm][:, perm]


def write_relation(path, clip: nn.Module, tokenizer, classnames, template: str = TEMPLATE) -> torch.Tensor:
    """Write the raw relation (``float32`` ``.npy``, like the official ``relation+coco.npy``)
    of ``classnames`` under ``clip`` atomically; returns it."""
    r = class_similarities(clip, tokenizer, classnames, template)
    with atomic_path(path, suffix=".npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, r.numpy().astype(np.float32))
    return r


def load_relation(path, n_classes: int | None = None) -> torch.Tensor:
    try:
        r = torch.from_numpy(np.load(path)).float()
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read the relation file {path}: {err}") from err
    if r.ndim != 2 or r.shape[0] != r.shape[1] or (n_classes is not None and r.shape[0] != n_classes):
        raise ValueError(f"relation file {path}: expected a square ({n_classes}, {n_classes}) matrix, got {tuple(r.shape)}")
    return r


# -- the model -------------------------------------------------------------------------------
class GraphLayer(nn.Module):
    """``A @ (H W)``, no bias; W ~ U(-1/sqrt(out), 1/sqrt(out)) as in the official code."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_in, d_out).uniform_(-1 / math.sqrt(d_out), 1 / math.sqrt(d_out)))

    def forward(self, h: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:  # (C, d_in), (C, C) -> (C, d_out)
        return adj @ (h @ self.weight)


class SemanticGraph(nn.Module):
    """Three graph layers ``d -> 2d -> 2d -> d`` over the class features, added back."""

    def __init__(self, dim: int):
        super().__init__()
        self.layers = nn.ModuleList([GraphLayer(dim, 2 * dim), GraphLayer(2 * dim, 2 * dim), GraphLayer(2 * dim, dim)])

    def forward(self, z: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:  # (C, d) -> (C, d)
        h = z
        for i, layer in enumerate(self.layers):
            h = layer(h, adj)
            h = F.leaky_relu(h, 0.2) if i < 2 else h
        return z + h


class SCPNet(Method, OwnTraining, KeepsState):
    def __init__(self, clip: nn.Module, tokenizer, classnames, relation: torch.Tensor | None = None,
                 variant: str = "full", topk: int | None = None, reweight_p: float = 0.2, temperature: float = 0.2,
                 scale: float | None = 10.0, init: str = "a photo of a", train_image_encoder: bool = True,
                 loss: str = "splc", hard_k: int = 2, p_cutoff: float = 0.95, kl_lambda: float = 1.0,
                 lambda_u: float = 0.125, ema_decay: float = 0.997, seed: int = 0):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown SCPNet variant {variant!r}; choose one of {VARIANTS}")
        if loss not in SUPERVISED:
            raise ValueError(f"unknown supervised loss {loss!r}; choose one of {tuple(SUPERVISED)}")
        self.variant, self.loss_name = variant, loss
        self.coop = CoOp(clip, tokenizer, list(classnames), init=init)  # freezes CLIP, trains the context
        if train_image_encoder:  # the official code freezes only the text encoder
            models.unfreeze(self.coop.clip.visual)
            self.coop.clip.logit_scale.requires_grad_(True)
        self.scale = scale  # None: CLIP's own temperature (the official NUS-WIDE setting)
        C = len(self.coop.classnames)
        relation = class_similarities(clip, tokenizer, classnames) if relation is None else relation.float().cpu()
        if variant == "shuffled prior":
            relation = shuffled(relation, seed)
        adj, smooth = relation_matrices(relation, topk or C, reweight_p, temperature)
        self.register_buffer("adjacency", adj)  # A: the graph's
        self.register_buffer("smoothing", smooth)  # S: the soft targets'
        dim = clip.visual.output_dim  # both towers project to it
        self.graph = SemanticGraph(dim) if variant in ("full", "graph", "shuffled prior") else None
        self.self_supervised = variant in ("full", "soft targets", "shuffled prior")
        self.hard_k, self.p_cutoff, self.kl_lambda, self.lambda_u = hard_k, p_cutoff, kl_lambda, lambda_u
        self.ema_decay = ema_decay
        self.frozen_image_encoder = not train_image_encoder  # then a task may encode the images once
        self.selected: torch.Tensor | None = None  # (N train, C) last pseudo-labels per image
        self._ema: nn.Module | None = None

    @property
    def views(self) -> tuple[str, ...]:
        """The views a training batch needs."""
        return ("weak", "weak", "strong") if self.self_supervised else ("weak",)

    def prompt_features(self) -> torch.Tensor:
        """CoOp's class-prompt features ``(C, d)``, encoding only the tokens up to the last
        end-of-text: under the causal mask the tokens after it cannot change the pooled
        feature, so this equals ``self.coop.text_features()`` at a fraction of the cost."""
        clip, ids = self.coop.clip, self.coop.ids
        eot = prompting.eot_index(ids, clip)
        n = int(eot.max()) + 1 if getattr(clip, "attn_mask", None) is not None else ids.shape[1]
        return prompting.encode_text_embeddings(clip, self.coop.prompt_embeddings()[:, :n], eot)

    def text_features(self) -> torch.Tensor:
        z = self.prompt_features()  # (C, d), not normalised
        return z if self.graph is None else self.graph(z.float(), self.adjacency)

    image_encoder = property(lambda self: self.coop.clip.visual)  # a task keys stored features by it

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.coop.clip.encode_image(images)

    def logits_from_features(self, image_features: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, C)``: scale x cos(image, class); sigmoid gives the probabilities."""
        clip = self.coop.clip
        scale = clip.logit_scale.exp() if self.scale is None else self.scale
        img = F.normalize(image_features.float(), dim=-1)
        return scale * img @ F.normalize(self.text_features().float(), dim=-1).t()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.encode_image(images))

    # -- training -------------------------------------------------------------------------
    def training_loss(self, batch: dict) -> torch.Tensor:
        """``batch``: ``index`` (B,), ``views`` (one per :attr:`views`, each (B, 3, H, W)),
        ``observed`` (B, C) in {1, -1, 0}, ``epoch``, ``n_train``; with ``features`` true the
        views are image features of a frozen encoder."""
        if self._ema is None:  # before the first optimiser step: the average starts here
            self.start_average()
        views, observed = batch["views"], batch["observed"]
        run = self.logits_from_features if batch.get("features") else self
        logits = run(torch.cat(views)).float().split(len(observed))
        sup = SUPERVISED[self.loss_name](logits[0], observed, epoch=batch["epoch"])
        if not self.self_supervised:
            return sup
        if self.selected is None or len(self.selected) != batch["n_train"]:
            self.selected = torch.zeros(batch["n_train"], observed.shape[1], device=observed.device)
        thresholds = self.p_cutoff * class_accuracy(self.selected, self.hard_k).to(observed.device)
        unsup, labels = self_supervision(logits[2], logits[1], observed, self.smoothing, thresholds, self.hard_k,
                                         self.kl_lambda)
        chosen = labels.sum(1) >= 1
        self.selected[batch["index"][chosen]] = labels[chosen]
        return sup + self.lambda_u * unsup

    def start_average(self) -> None:
        """Start the moving average from the weights as they stand. The official trainer
        copies the model into its ``ModelEma`` before training (``scpnet.py:245-246``,
        ``utils.py:256-266``); :meth:`training_loss` calls this before the first step."""
        selected, self.selected = self.selected, None  # the pseudo-labels stay with the model
        object.__setattr__(self, "_ema", None)  # a plain attribute, not a sub-module: not trained or counted
        try:
            object.__setattr__(self, "_ema", models.freeze(copy.deepcopy(self)).eval())
        finally:
            self.selected = selected

    def after_step(self) -> None:
        """After each optimiser step: ``avg = decay * avg + (1 - decay) * now`` for every
        floating entry of the state (trained weights, batch-norm statistics), as the official
        ``ModelEma.update`` does (``utils.py:276-279``, called after every step,
        ``train.py:106``); integer entries are copied. The frozen weights are left out: they
        equal their average."""
        if self._ema is None:
            raise RuntimeError("SCPNet.after_step came before any training_loss: the moving average starts "
                               "from the weights before the first step (call start_average() first)")
        frozen = {n for n, p in self.named_parameters() if not p.requires_grad}
        with torch.no_grad():
            avg_state = self._ema.state_dict()
            for name, now in self.state_dict().items():
                if name not in frozen:
                    avg = avg_state[name]
                    if avg.is_floating_point():
                        avg.mul_(self.ema_decay).add_(now, alpha=1 - self.ema_decay)
                    else:
                        avg.copy_(now)

    def averaged(self) -> nn.Module:
        """The moving average of the weights (the model itself before training starts)."""
        return self if self._ema is None else self._ema

    def resume_state(self) -> dict[str, torch.Tensor]:
        """The pseudo-labels and the moving average of what trains (the frozen weights are
        their own average), so that a resumed run is exact."""
        out = {} if self.selected is None else {"selected": self.selected.clone()}
        if self._ema is not None:
            frozen = {n for n, p in self.named_parameters() if not p.requires_grad}
            out.update({f"ema.{n}": t.clone() for n, t in self._ema.state_dict().items() if n not in frozen})
        return out

    def load_resume_state(self, tensors: dict[str, torch.Tensor]) -> None:
        device = self.adjacency.device
        if "selected" in tensors:
            self.selected = tensors["selected"].to(device).clone()
        avg = {n[len("ema."):]: t for n, t in tensors.items() if n.startswith("ema.")}
        if avg:
            self.start_average()
            self._ema.load_state_dict(avg, strict=False)


def class_accuracy(selected: torch.Tensor, hard_k: int) -> torch.Tensor:
    """The factor of ``p_cutoff`` in SCPNet's class thresholds, from the images' current
    pseudo-labels ``selected`` (N, C): FlexMatch's learning effect ``beta_c = count_c /
    max(max count, hard_k * N - total)``, at least ``1 / C`` (and ``1 / C`` everywhere before
    the first label), mapped through ``beta / (2 - beta)``. As in the official code the
    mapping applies from the first step, so the thresholds start at ``p_cutoff / (2C - 1)``
    (``scpnet.py:253-254`` sets ``beta = 1/C``, ``scpnet.py:265-266, 272-273`` scale it,
    ``scpnet.py:300-304`` update it)."""
    counts = selected.sum(0)
    C = selected.shape[1]
    beta = torch.full((C,), 1 / C)
    if counts.max() >= 1:
        beta = (counts / max(counts.max().item(), hard_k * len(selected) - counts.sum().item())).clamp(min=1 / C)
    return beta / (2 - beta)


def self_supervision(strong: torch.Tensor, weak: torch.Tensor, observed: torch.Tensor, smoothing: torch.Tensor,
                     thresholds: torch.Tensor, hard_k: int, kl_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
    """L_cst + kl_lambda x L_dstl (sum-reduced) and the hard targets ``(B, C)``.

    Hard targets: the top-``hard_k`` classes of the weak view's probabilities ``p_w`` that
    pass their class threshold, OR the observed positives; an image counts only if one of
    its top-k passes. L_cst = BCE(strong, hard targets); L_dstl = BCE(strong, p_w S^T) --
    the official code calls it "kl", but it is a cross-entropy against soft targets."""
    p_w = torch.sigmoid(weak.detach())  # (B, C)
    top_p, top_i = p_w.topk(hard_k, dim=1)
    mask = (top_p >= thresholds[top_i]).any(1).float()[:, None]  # (B, 1)
    labels = torch.zeros_like(p_w).scatter_(1, top_i, 1.0)
    labels = labels * (p_w >= thresholds[None]).float()
    labels = torch.maximum(labels, (observed > 0).float())
    soft = p_w @ smoothing.t()  # (B, C) in [0, 1]: each row of S sums to 1
    cst = F.binary_cross_entropy_with_logits(strong, labels, reduction="none")
    dstl = F.binary_cross_entropy_with_logits(strong, soft, reduction="none")
    return ((cst + kl_lambda * dstl) * mask).sum(), labels


# the official decay for ``ema_decay``: the average keeps weight ``keep`` on itself after one
# epoch (defined once, in clipadapt.core.ema, which the recipes' rule reads too)
ema_decay = ema.ema_decay


def _build(clip, tokenizer, context, options, variant):
    return SCPNet(clip, tokenizer, context["classnames"], relation=context.get("relation"), variant=variant, **options)


register(MethodSpec("SCPNet", "multilabel", _build, "prompts, a label graph and prior-enhanced self-supervision for "
                    "incomplete multi-label recognition (clipadapt.methods.scpnet)", variants=VARIANTS))


# -- the relation-file script --------------------------------------------------------------------
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Write SCPNet's relation file (cosines of CLIP text features of the "
                                "class names) for any class list and CLIP.")
    p.add_argument("classes", help="a text file with one class name per line (e.g. voc_labels.txt)")
    p.add_argument("out", help="where to write the .npy file")
    p.add_argument("--model", default="RN50")
    p.add_argument("--pretrained", default="openai")
    p.add_argument("--template", default=TEMPLATE)
    a = p.parse_args(argv)
    try:
        names = [n.strip() for n in open(a.classes, encoding="utf-8") if n.strip()]
    except OSError as err:
        raise SystemExit(f"cannot read the class list {a.classes}: {err}")
    if not names:
        raise SystemExit(f"the class list {a.classes} holds no names")
    clip, _, tok = models.load_clip(a.model, a.pretrained or None)
    r = write_relation(a.out, clip, tok, names, a.template)
    print(f"wrote {a.out}: {len(names)} classes, off-diagonal cosines {r[~torch.eye(len(r), dtype=bool)].min():.3f}"
          f"..{r[~torch.eye(len(r), dtype=bool)].max():.3f}")


if __name__ == "__main__":
    main()
