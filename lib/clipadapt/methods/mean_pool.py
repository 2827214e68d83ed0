"""Mean pooling: text-video retrieval with an image CLIP, CLIP4Clip's baseline (chapter 3).

:class:`MeanPoolCLIP` sends every frame through the image encoder and takes the mean of
the normalised frame features as the video's feature (no parameter of its own).
``policy`` chooses what of the CLIP trains (:func:`clipadapt.methods.baselines.set_trainable`): ``"none"``
(zero-shot), ``"full"``, ``"partial"`` (the last blocks) or ``"lora"``. Every retrieval
method has this interface -- ``encode_video(videos (B, T, 3, H, W)) -> (B, D)`` and
``encode_text(ids) -> (N, D)`` -- which :class:`clipadapt.tasks.retrieval.RetrievalTask` trains and
measures.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core import features
from . import vop
from .baselines import POLICIES, set_trainable
from .protocol import Method
from .spec import MethodSpec, register


class MeanPoolCLIP(Method):
    def __init__(self, clip: nn.Module, policy: str = "none", last_layers: int = 2, rank: int = 8,
                 checkpointing: bool = False):
        super().__init__()
        if policy not in POLICIES:
            raise ValueError(f"unknown tuning policy {policy!r}; choose one of {POLICIES}")
        self.clip, self.policy = clip, policy
        set_trainable(clip, policy, last_layers=last_layers, rank=rank)
        # activation checkpointing: each block's activations are recomputed in the backward
        # pass instead of kept (open_clip's own switch; the gradients do not change)
        if checkpointing:
            clip.set_grad_checkpointing(True)

    # both encoders' features in float32, as CLIP4Clip reads them (modeling.py get_visual_output and
    # get_sequence_output: `.float()`): the float16 CLIP of the official row pools and ranks in
    # float32; a float32 CLIP's features are returned as they are
    def frame_features(self, video: torch.Tensor) -> torch.Tensor:
        B, T = video.shape[:2]
        return self.clip.encode_image(video.flatten(0, 1)).float().reshape(B, T, -1)  # (B, T, D)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        return features.mean_pool(self.frame_features(video))

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_text(ids).float()


def _build(clip, tokenizer, context, options, variant):
    return MeanPoolCLIP(clip, variant, last_layers=options.get("last_layers", 2), rank=options.get("rank", 8),
                        checkpointing=options.get("checkpointing", False))


register(MethodSpec("mean pooling", "retrieval", _build, "the mean of the frames' CLIP features; variants say what "
                    "of CLIP trains", variants=POLICIES, paper=vop.paper_rows({"full": "Full", "partial": "Partial"}),
                    paper_source=vop.PAPER_SOURCE))
