"""Tuning CLIP's own weights for classification (chapter 2's last two methods): LoRA and full
fine-tuning.

Both classify as zero-shot CLIP does -- image features against the text features of the
class prompts -- but compute both with a CLIP whose weights train
(:class:`TextHeadClassifier`), so that the classifier moves with the towers. What trains is
a policy of :func:`clipadapt.methods.baselines.set_trainable`: ``"lora"`` (rank-``rank``
updates of every attention's fused QKV weight in both towers, :mod:`clipadapt.methods.lora`;
its options ``rank`` and ``alpha``, the scale being ``alpha / rank``, 1 where ``alpha`` is
unset) or ``"full"`` (every weight of both towers); CLIP's temperature stays frozen under both.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core import features
from ..data import names
from .baselines import set_trainable
from .protocol import Method
from .spec import MethodSpec, register


class TextHeadClassifier(Method):
    """Logits ``(B, n_classes)`` of images ``(B, 3, H, W)``: scaled cosines of the image
    features and the class prompts' text features, both computed by the (partly) trainable
    ``clip`` at every call."""

    def __init__(self, clip: nn.Module, tokenizer, classnames: list[str], template: str):
        super().__init__()
        self.clip = clip
        self.register_buffer("ids", tokenizer(names.prompts(template, classnames)), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return features.scaled_cosine(self.clip.encode_image(images), self.clip.encode_text(self.ids), self.clip)


def _tuned_clip(policy: str):
    def build(clip, tokenizer, context, options, variant):
        set_trainable(clip, policy, rank=options.get("rank", 8), alpha=options.get("alpha"))
        return TextHeadClassifier(clip, tokenizer, context["classnames"], context["template"])

    return build


register(MethodSpec("LoRA", "classification", _tuned_clip("lora"), "low-rank updates of every attention QKV, "
                    "both towers"))
register(MethodSpec("full fine-tune", "classification", _tuned_clip("full"), "every weight of both towers"))
