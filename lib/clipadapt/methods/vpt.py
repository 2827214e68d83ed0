"""Deep visual prompt tuning (VPT-deep, Jia et al., ECCV 2022) on a frozen CLIP ViT.

``n_prompts`` learned tokens per layer sit between the class token and the patch tokens,
replaced by fresh ones before every layer (see :func:`clipadapt.core.prompting.encode_image_prompted`).
They are initialised uniformly as in VPT (Xavier range over the patch size and width).
The classifier is CLIP's own: the frozen text features of the class prompts.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core import features, models, prompting
from ..data import names
from .protocol import Method
from .spec import MethodSpec, register


class DeepVisualPrompts(Method):
    def __init__(self, clip: nn.Module, n_prompts: int = 8, class_features: torch.Tensor | None = None,
                 depth: int | None = None):
        super().__init__()
        self.clip = models.freeze(clip)
        visual = clip.visual
        if not hasattr(visual, "conv1"):
            raise TypeError(f"deep visual prompts need a ViT image encoder, not {type(visual).__name__}")
        layers = len(visual.transformer.resblocks)
        depth = layers if depth is None else depth
        if not 1 <= depth <= layers:
            raise ValueError(f"depth must lie in [1, {layers}], got {depth}")
        if n_prompts < 0:
            raise ValueError(f"n_prompts must be non-negative, got {n_prompts}")
        width = visual.transformer.width
        patch = visual.patch_size if isinstance(visual.patch_size, tuple) else (visual.patch_size,) * 2
        bound = math.sqrt(6.0 / float(3 * patch[0] * patch[1] + width))
        self.prompts = nn.Parameter(torch.empty(depth, n_prompts, width).uniform_(-bound, bound))
        if class_features is not None:
            self.register_buffer("class_features", nn.functional.normalize(class_features.detach(), dim=-1))
        else:
            self.class_features = None

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return prompting.encode_image_prompted(self.clip.visual, images, self.prompts)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.class_features is None:
            raise ValueError("give class_features (the text features of the class prompts) to classify")
        return features.scaled_cosine(self.encode_image(images), self.class_features, self.clip)


def _build(clip, tokenizer, context, options, variant):
    with torch.no_grad():  # the classifier: the class prompts' text features (C, D)
        cls = features.encode_texts(clip, tokenizer, names.prompts(context["template"], context["classnames"]))
    return DeepVisualPrompts(clip, options.get("prompts", 8), class_features=cls)


register(MethodSpec("VPT-deep", "classification", _build, "visual prompts in every layer (clipadapt.methods.vpt)"))
