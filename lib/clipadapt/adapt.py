"""The classifiers of chapter 2 that are not a method file of their own.

Every classifier maps CLIP-normalised images ``(B, 3, H, W)`` to class logits
``(B, n_classes)``; they differ in what trains:

==========================  ============================================================
:class:`ZeroShot`           nothing: the frozen class prompts' text features
:class:`LinearProbe`        a linear layer on frozen image features, initialised from the
                            zero-shot class features (the encoder is frozen, so the
                            runner encodes every image once: ``frozen_features``)
:class:`TextHeadClassifier` image features against the class prompts' text features, both
                            computed by a (partly) trainable CLIP: what LoRA and full
                            fine-tuning train (the policy: :mod:`clipadapt.tuning`)
==========================  ============================================================

CoOp and VPT-deep live in :mod:`clipadapt.methods`; :mod:`clipadapt.registry` builds all of
them by name and :mod:`clipadapt.runner` trains and measures them.
"""

from __future__ import annotations

import torch
from torch import nn

from . import features, models


class ZeroShot(nn.Module):
    def __init__(self, clip: nn.Module, tokenizer, classnames: list[str], template: str):
        super().__init__()
        self.clip = models.freeze(clip)
        with torch.no_grad():
            cls = features.encode_texts(clip, tokenizer, [template.format(c) for c in classnames])
        self.register_buffer("class_features", cls, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return features.scaled_cosine(self.clip.encode_image(images), self.class_features, self.clip)


class LinearProbe(nn.Module):
    """A linear classifier on frozen, normalised image features. Its weights start at the
    zero-shot classifier: the class prompts' features times CLIP's temperature."""

    def __init__(self, clip: nn.Module, tokenizer, classnames: list[str], template: str):
        super().__init__()
        self.clip = models.freeze(clip)
        with torch.no_grad():
            cls = features.encode_texts(clip, tokenizer, [template.format(c) for c in classnames])
        self.head = nn.Linear(cls.shape[1], cls.shape[0]).to(cls.device)
        with torch.no_grad():
            self.head.weight.copy_(cls * clip.logit_scale.exp().item())
            self.head.bias.zero_()

    def frozen_features(self, images: torch.Tensor) -> torch.Tensor:
        return features.encode_images(self.clip, images)

    def forward_features(self, feats: torch.Tensor) -> torch.Tensor:
        return self.head(feats)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_features(self.frozen_features(images))


class TextHeadClassifier(nn.Module):
    def __init__(self, clip: nn.Module, tokenizer, classnames: list[str], template: str):
        super().__init__()
        self.clip = clip
        self.register_buffer("ids", tokenizer([template.format(c) for c in classnames]), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return features.scaled_cosine(self.clip.encode_image(images), self.clip.encode_text(self.ids), self.clip)
