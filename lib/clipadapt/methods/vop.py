"""VoP: text-video co-operative prompt tuning (Huang et al., CVPR 2023), every variant.

A frozen image CLIP encodes a video as the mean of its frames' (normalised) features; only
prompts (and, for some variants, a small prompt generator) train. ``variant`` picks:

=========  ===================================================================================
``vop``    8 text and 8 visual prompts in every layer of both encoders (deep prompts)
``P``      visual prompts: 4 shared + 4 specific to the frame's position in the video
``C``      4 shared + 4 generated per frame from the frames' class tokens by a 1-layer BiLSTM
           and one linear layer, both shared by all layers (the class tokens are not changed)
``F``      the first ``ks`` (8) layers attend within each frame (frame-level prompts); the
           last ones attend over all tokens of the video, with 8 video-level prompts and a
           learned frame positional embedding added before the first of them
``F+P``    ``P`` prompts in the first ``ks`` layers, ``F`` above
``F+C``    ``C`` prompts in the first ``ks`` layers, ``F`` above
=========  ===================================================================================

Text prompts sit after the start-of-text token (the paper's Eq. 3; the ModelScope release
splits them 4 before and 4 after the words, see reference notes). Parameter counts on
CLIP ViT-B/32 with 12 frames: 122,880 (VoP), 528,384 (P), 14,257,152 (C, with a BiLSTM of
768 hidden units per direction, the hypothesis that reproduces the paper's 11.898%),
122,880 + 9,216 frame positional embedding (F), 393,216 + 9,216 (F+P), 14,269,440 + 9,216
(F+C; the paper says 14.1M -- see chapter 4).
"""

from __future__ import annotations

import torch
from torch import nn

from ..core import features, merge, models, prompting
from .protocol import Method
from .spec import MethodSpec, register

VARIANTS = ("vop", "P", "C", "F", "F+P", "F+C")


def _normal(*shape, std=0.02):
    return nn.Parameter(torch.randn(*shape) * std)


class VoP(Method):
    def __init__(self, clip: nn.Module, variant: str = "vop", frames: int = 12, text_prompts: int = 8,
                 visual_prompts: int = 8, shared: int = 4, specific: int = 4, ks: int = 8,
                 lstm_hidden: int | None = None):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown VoP variant {variant!r}; choose one of {VARIANTS}")
        self.clip = models.freeze(clip)
        visual = clip.visual
        if not hasattr(visual, "conv1"):
            raise TypeError(f"VoP needs a ViT image encoder, not {type(visual).__name__}")
        self.variant, self.frames = variant, frames
        layers_v = len(visual.transformer.resblocks)
        layers_t = len(clip.transformer.resblocks)
        wv, wt = visual.transformer.width, clip.transformer.width
        self.ks = ks if variant.startswith("F") else layers_v
        if not 0 < self.ks <= layers_v:
            raise ValueError(f"ks must lie in [1, {layers_v}], got {ks}")
        frame_layers = self.ks
        self.text_prompts = _normal(layers_t, text_prompts, wt)
        kind = variant.replace("F+", "").replace("F", "vop") if variant != "F" else "vop"
        self.kind = kind
        if kind == "vop":
            self.frame_prompts = _normal(frame_layers, visual_prompts, wv)
        else:
            self.shared_prompts = _normal(frame_layers, shared, wv)
        if kind == "P":
            self.position_prompts = _normal(frame_layers, frames, specific, wv)
        if kind == "C":
            hidden = lstm_hidden or wv
            self.cmm = nn.LSTM(wv, hidden, num_layers=1, batch_first=True, bidirectional=True)
            self.generator = nn.Linear(2 * hidden, specific * wv)
            self.generated = specific
        if self.ks < layers_v:
            self.video_prompts = _normal(layers_v - self.ks, visual_prompts, wv)
            self.frame_position = nn.Parameter(torch.zeros(frames, wv))

    # -- prompts of the frame-level layers -------------------------------------------------------
    def _frame_prompts(self, batch: int):
        """A function (layer, tokens) -> prompts (B*F, P, width) for the frame-level layers."""
        F_ = self.frames

        def prompts(i, x):
            if i >= self.ks:
                return None
            if self.kind == "vop":
                return self.frame_prompts[i]
            parts = [self.shared_prompts[i].expand(batch * F_, -1, -1)]
            if self.kind == "P":  # frame j of every video gets the prompts of position j
                parts.append(self.position_prompts[i].repeat(batch, 1, 1))
            else:  # "C": generated from the class tokens of the video's frames, entering layer i
                cls = x[:, 0].reshape(batch, F_, -1)
                context, _ = self.cmm(cls)  # (B, F, 2 * hidden)
                generated = self.generator(context).reshape(batch * F_, self.generated, -1)
                parts.append(generated.to(x.dtype))
            return torch.cat(parts, dim=1)

        return prompts

    # -- encoders ------------------------------------------------------------------------------
    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        return prompting.encode_text_prompted(self.clip, ids, self.text_prompts)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """Video features ``(B, D)``: the mean of the normalised frame features of ``video``
        ``(B, F, 3, H, W)``."""
        return features.mean_pool(self.frame_features(video))

    def frame_features(self, video: torch.Tensor) -> torch.Tensor:
        """Projected class tokens of every frame ``(B, F, D)``."""
        B, F_ = video.shape[:2]
        if F_ != self.frames:
            raise ValueError(f"this VoP was built for {self.frames} frames, got videos of {F_}")
        visual = self.clip.visual
        frames = video.flatten(0, 1)
        layers = len(visual.transformer.resblocks)
        if self.ks == layers:
            feats = prompting.encode_image_prompted(visual, frames, self._frame_prompts(B))
            return feats.reshape(B, F_, -1)
        x = prompting.encode_image_prompted(visual, frames, self._frame_prompts(B), layers=self.ks, pool=False)
        x = x + self.frame_position.repeat(B, 1).unsqueeze(1).to(x.dtype)  # frame j of each video: row j
        x = merge.group_frames(x, F_, prefix=1, frames=F_)  # (B, F * N, W): [C_1..C_F] [all patches]
        cls, patches = x[:, :F_], x[:, F_:]  # (B, F, W), (B, F * (N - 1), W)
        for i, block in enumerate(visual.transformer.resblocks[self.ks:]):
            p = self.video_prompts[i].expand(B, -1, -1).to(x.dtype)
            tokens = block(torch.cat([cls, p, patches], dim=1))  # [C_1..C_F] [prompts] [all patches]
            n = p.shape[1]
            cls, patches = tokens[:, :F_], tokens[:, F_ + n:]
        return prompting.image_head(visual, cls.reshape(B * F_, 1, -1)).reshape(B, F_, -1)  # each frame's class token

    def forward(self, video: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Similarity logits (videos x texts), scaled by CLIP's temperature."""
        return features.scaled_cosine(self.encode_video(video), self.encode_text(ids), self.clip)

    def tokens_per_layer(self) -> list[int]:
        """Sequence length of every image-encoder layer, per frame (frame-level layers) or
        per video (video-level layers)."""
        visual = self.clip.visual
        n = visual.grid_size[0] * visual.grid_size[1]
        p = self.frame_prompts.shape[1] if self.kind == "vop" else self.shared_prompts.shape[1] + (
            self.position_prompts.shape[2] if self.kind == "P" else self.generated)
        layers = len(visual.transformer.resblocks)
        out = [1 + p + n] * self.ks
        if self.ks < layers:
            out += [self.frames + self.video_prompts.shape[1] + self.frames * n] * (layers - self.ks)
        return out


# The paper's Table 1 (MSR-VTT 9k training, 1k-A test, CLIP ViT-B/32, 12 frames), as printed
# in Huang et al., CVPR 2023: parameters in millions (% of their "Full" count), then R@1,
# R@5, R@10, MnR, MdR text-to-video and the same video-to-text. Cited, not measured here.
PAPER_TABLE_1 = {
    "Full": ("119.8 (100%)", 41.7, 69.2, 79.0, 16.5, 2.0, 42.5, 70.9, 81.4, 11.0, 2.0),
    "Partial": ("7.7 (6.410%)", 39.8, 65.3, 75.9, 19.3, 2.0, 37.9, 66.1, 77.4, 15.5, 3.0),
    "VoP": ("0.1 (0.103%)", 39.6, 66.7, 77.8, 17.2, 2.0, 42.1, 68.8, 80.7, 12.4, 2.0),
    "VoP^P": ("0.5 (0.441%)", 40.1, 65.7, 77.7, 16.9, 2.0, 42.5, 70.0, 79.9, 12.4, 2.0),
    "VoP^C": ("14.3 (11.898%)", 40.8, 68.1, 79.0, 15.8, 2.0, 42.3, 70.1, 81.1, 11.4, 2.0),
    "VoP^F": ("0.1 (0.103%)", 42.6, 68.4, 78.7, 15.8, 2.0, 42.4, 70.5, 81.0, 11.0, 2.0),
    "VoP^F+P": ("0.4 (0.328%)", 43.5, 69.3, 79.3, 14.8, 2.0, 43.6, 71.2, 81.2, 11.0, 2.0),
    "VoP^F+C": ("14.1 (11.785%)", 44.6, 69.9, 80.3, 16.3, 2.0, 44.5, 70.7, 80.6, 11.5, 2.0),
}
PAPER_COLUMNS = ("params (M, %)", "t2v R@1", "t2v R@5", "t2v R@10", "t2v MnR", "t2v MdR",
                 "v2t R@1", "v2t R@5", "v2t R@10", "v2t MnR", "v2t MdR")
PAPER_SOURCE = "VoP paper (Huang et al., CVPR 2023), Table 1: MSR-VTT 9k / 1k-A, CLIP ViT-B/32, 12 frames"


# The paper's Table 3, "Ablation on the CMM choices in VoP^C", its BiLSTM row: the default
# VoP^C (its MSR-VTT-9k cells are Table 1's VoP^C row), text-to-video R@1, R@5, R@10 on each
# benchmark, CLIP ViT-B/32. The other variants' per-dataset values are in the paper's
# supplementary material, not here. Cited, not measured here.
PAPER_TABLE_3 = {
    "VoP^C": {
        "MSR-VTT-9k": (40.8, 68.1, 79.0),
        "MSR-VTT-7k": (40.0, 67.3, 78.2),
        "DiDeMo": (40.0, 68.0, 78.5),
        "ActivityNet": (32.6, 62.5, 76.5),
        "LSMDC": (20.4, 40.0, 48.1),
    },
}
PAPER_TABLE_3_COLUMNS = ("t2v R@1", "t2v R@5", "t2v R@10")
PAPER_TABLE_3_SOURCE = ('VoP paper (Huang et al., CVPR 2023), Table 3 "Ablation on the CMM choices in VoP^C", '
                        "BiLSTM row (the default VoP^C): text-to-video, CLIP ViT-B/32")


def paper_rows(rows: dict[str | None, str]) -> dict:
    """Rows of the paper's Table 1 by our variant names (``{variant: row name}``), in the
    retrieval task's column names: ``{variant: {column: value}}``."""
    return {v: dict(zip(PAPER_COLUMNS, PAPER_TABLE_1[name])) for v, name in rows.items()}


def _build(clip, tokenizer, context, options, variant):
    return VoP(clip, variant, frames=context["frames"], ks=options.get("ks", 8))


register(MethodSpec("VoP", "retrieval", _build, "text-video co-operative prompt tuning (clipadapt.methods.vop)",
                    variants=VARIANTS, paper=paper_rows(dict(zip(VARIANTS, (
                        "VoP", "VoP^P", "VoP^C", "VoP^F", "VoP^F+P", "VoP^F+C")))), paper_source=PAPER_SOURCE))
