"""The baselines: what trains in a whole CLIP, and the two classifiers of chapter 2 that
train no weight of it.

Freezing policies (:func:`set_trainable`), the one name for what of a CLIP trains:

=============  ===========================================================================
``none``       nothing (zero-shot)
``full``       every weight of both towers
``partial``    the last ``last_layers`` blocks of both towers, their final layer norms and
               the two projections (VoP's "Partial" baseline)
``lora``       LoRA of rank ``rank`` on the fused query-key-value weight of every block
               of both towers (:mod:`clipadapt.methods.lora`); the rest frozen
=============  ===========================================================================

The temperature ``logit_scale`` (and ``logit_bias``) stays frozen under every policy.

Classifiers: each maps CLIP-normalised images ``(B, 3, H, W)`` to class logits
``(B, n_classes)``:

==========================  ============================================================
:class:`ZeroShot`           nothing trains: the frozen class prompts' text features
:class:`LinearProbe`        a linear layer on frozen image features: from the zero-shot
                            class features by gradient steps, or the official probe
                            (scikit-learn's, C searched; the encoder is frozen, so the
                            task encodes every image once)
==========================  ============================================================

The methods that train CLIP's own weights under a policy (LoRA, full fine-tuning) are in
:mod:`clipadapt.methods.finetune`, CoOp and VPT-deep in files of their own;
:mod:`clipadapt.methods.registry` builds every method by name and
:mod:`clipadapt.training.driver` trains and measures them.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core import features, models
from ..data import names
from . import lora, probe_search
from .protocol import Method
from .spec import MethodSpec, register

POLICIES = ("none", "full", "partial", "lora")


def set_trainable(clip: nn.Module, policy: str, last_layers: int = 2, rank: int = 8,
                  alpha: float | None = None) -> nn.Module:
    """Freeze ``clip`` and unfreeze (or adapt) what ``policy`` trains; returns ``clip``
    (``rank`` and ``alpha``: the LoRA's, :func:`clipadapt.methods.lora.add_lora`)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown tuning policy {policy!r}; choose one of {POLICIES}")
    models.freeze(clip)
    if policy == "full":
        models.unfreeze(clip)
    elif policy == "partial":
        layers = len(clip.visual.transformer.resblocks)
        if not 1 <= last_layers <= layers:
            raise ValueError(f"last_layers must lie in [1, {layers}], got {last_layers}")
        for blocks in (clip.visual.transformer.resblocks, clip.transformer.resblocks):
            for block in blocks[-last_layers:]:
                models.unfreeze(block)
        for p in (clip.visual.proj, clip.text_projection):
            p.requires_grad_(True)
        models.unfreeze(clip.visual.ln_post)
        models.unfreeze(clip.ln_final)
    elif policy == "lora":
        lora.add_lora(clip, rank=rank, alpha=alpha)
    for name in ("logit_scale", "logit_bias"):
        p = getattr(clip, name, None)
        if isinstance(p, nn.Parameter):
            p.requires_grad_(False)
    return clip


class ZeroShot(Method):
    def __init__(self, clip: nn.Module, tokenizer, classnames: list[str], template: str):
        super().__init__()
        self.clip = models.freeze(clip)
        with torch.no_grad():
            cls = features.encode_texts(clip, tokenizer, names.prompts(template, classnames))
        self.register_buffer("class_features", cls, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return features.scaled_cosine(self.clip.encode_image(images), self.class_features, self.clip)


PROBES = ("zero-shot start", "sklearn")


class LinearProbe(Method):
    """A linear classifier on frozen image features, one of :data:`PROBES`:

    * ``"zero-shot start"`` (the tiny and colab rows): on normalised features, its weights
      start at the zero-shot classifier (the class prompts' features times CLIP's
      temperature) and take gradient steps;
    * ``"sklearn"`` (the official probe, the paper row): on the features as the encoder gives
      them, fitted once by :meth:`fit_features` (:mod:`clipadapt.methods.probe_search`:
      scikit-learn's L-BFGS with C searched on a validation split), held in float64.
    """

    def __init__(self, clip: nn.Module, tokenizer, classnames: list[str], template: str,
                 probe: str = "zero-shot start"):
        super().__init__()
        if probe not in PROBES:
            raise ValueError(f"unknown probe {probe!r}; choose one of {PROBES}")
        self.clip, self.probe = models.freeze(clip), probe
        with torch.no_grad():
            cls = features.encode_texts(clip, tokenizer, names.prompts(template, classnames))
        self.head = nn.Linear(cls.shape[1], cls.shape[0]).to(cls.device)
        with torch.no_grad():
            if probe == "sklearn":
                self.head = self.head.double()  # fitted by fit_features, in scikit-learn's float64
                self.head.weight.zero_()
                self.head.bias.zero_()
            else:
                self.head.weight.copy_(cls * clip.logit_scale.exp().item())
                self.head.bias.zero_()

    frozen_image_encoder = True

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        if self.probe == "sklearn":  # the official probe's raw features (lpclip/feat_extractor.py:155)
            return features.encode_batched(lambda x: self.clip.encode_image(x.to(self.head.weight.device)), images)
        return features.encode_images(self.clip, images)  # normalised

    def fit_features(self, x: torch.Tensor, y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor,
                     score=probe_search.accuracy) -> probe_search.Search:
        """Fit the official probe on training features ``x (N, D)`` and labels ``y (N,)``,
        choosing C on the validation features and labels by ``score``."""
        if self.probe != "sklearn":
            raise ValueError(f"fit_features fits the official probe; this probe is {self.probe!r}")
        found = probe_search.search(x.cpu().numpy(), y.cpu().numpy(), val_x.cpu().numpy(), val_y.cpu().numpy(),
                                    score=score)
        w, b = probe_search.weights(found.classifier, self.head.out_features)
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(w))
            self.head.bias.copy_(torch.from_numpy(b))
        return found

    def logits_from_features(self, feats: torch.Tensor) -> torch.Tensor:
        return self.head(feats.to(self.head.weight.dtype))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.encode_image(images))


def _zero_shot(clip, tokenizer, context, options, variant):
    return ZeroShot(clip, tokenizer, context["classnames"], context["template"])


def _linear_probe(clip, tokenizer, context, options, variant):
    return LinearProbe(clip, tokenizer, context["classnames"], context["template"],
                       options.get("probe", "zero-shot start"))


register(MethodSpec("zero-shot", "classification", _zero_shot, "nothing trains: the class prompts' text features"))
register(MethodSpec("linear probe", "classification", _linear_probe, "a linear layer on frozen image features"))
