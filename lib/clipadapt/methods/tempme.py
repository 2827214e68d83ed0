"""TempMe: progressive temporal token merging for text-video retrieval (Shen et al., ICLR 2025).

A video of T frames costs an image CLIP T full passes, although neighbouring frames repeat
each other. TempMe merges that redundancy away inside the image encoder, in two stages that
:class:`~clipadapt.methods.tempme_schedule.Schedule` lays out layer by layer:

* **ImgMe** blocks (the early layers): ToMe inside every frame -- ``r`` tokens per layer,
  merged after attention, the head-mean keys as the similarity metric;
* **ClipMe** blocks: neighbouring clips are joined into one sequence (class tokens of all
  frames first, :func:`clipadapt.core.merge.group_frames`), a zero-initialised **clip positional
  embedding** tells their tokens apart, ``1 - R_C`` of the tokens merge *across* the joined
  clips on the pre-attention states, attention runs over what is left, ``1 - R_I`` merge
  *within* the clip on the keys, then the MLP. Class tokens never merge.

On ViT-B/32 with 12 frames this turns 12 sequences of 50 tokens into one of 97 (12 x 50 ->
12 x 34 -> 6 x 44 -> 3 x 56 -> 1 x 107 -> 1 x 97) and 53.0 G multiply-adds into 34.8 G. The
video feature is the mean of the 12 surviving class tokens after ``ln_post`` and the
projection, each normalised. LoRA of rank 8 (scaling 1, as TempMe's code) adapts the fused
QKV of every layer of both towers (:mod:`clipadapt.methods.lora`); ``policy="full"`` trains
every weight instead. Trainable on ViT-B/32: 294,912 + 196,608 (LoRA) + 16,128 (clip
positional embeddings of 12 + 6 + 3 rows of width 768) = 507,648.

The merging runs inside the stock blocks, patched in place by :mod:`clipadapt.core.patching`
(ToMe's ``apply_patch`` style): the ClipMe step is the patched block's ``pre_attention``
hook, the intra merge its usual ``r``. Pre-trained weights load unchanged and :meth:`TempMe.
remove_patch` restores the stock blocks. One difference from the official code: it adds the
clip positional embedding only when the cross merge removes tokens; here it is always added
(the defaults remove tokens, so they behave alike).
"""

from __future__ import annotations

import torch
from torch import nn

from ..core import features, merge, models, patching, prompting
from . import lora
from .protocol import Method
from .spec import MethodSpec, register
from .tempme_schedule import LONG_SCHEDULES, LONG_VIDEO_FRAMES, SCHEDULES, Schedule, Step

POLICIES = ("lora", "full", "none")  # what of the CLIP trains (a subset of baselines.POLICIES)


# The TempMe paper's costs (Shen et al., ICLR 2025, as reported; cited, not measured here):
# MSR-VTT, 12 frames, visual encoder only; throughput on an A100. None: not reported.
PAPER_TABLE = {  # setting: (G FLOPs = multiply-adds, output tokens, videos/s)
    "ViT-B/32 LoRA": (53.0, "12 x 50", None),
    "ViT-B/32 TempMe": (34.8, "1 x 97", None),
    "ViT-B/16 LoRA": (211.3, "12 x 197", None),
    "ViT-B/16 VoP": (246.2, "2368", 25.0),
    "ViT-B/16 TempMe": (121.4, "1 x 127", 45.1),
}


def schedule_for(model_name: str, frames: int | None = None) -> Schedule:
    """The schedule of a known model (``SCHEDULES``); with ``frames`` equal to
    ``LONG_VIDEO_FRAMES`` (64), its long-video schedule (``LONG_SCHEDULES``: 64 -> 16 -> 4 -> 1
    clips). Others need an explicit one."""
    table = LONG_SCHEDULES if frames == LONG_VIDEO_FRAMES and model_name in LONG_SCHEDULES else SCHEDULES
    if model_name not in table:
        raise ValueError(f"no TempMe schedule for {model_name!r}; known: {', '.join(SCHEDULES)} "
                         f"(pass schedule=Schedule(...))")
    return table[model_name]


class TempMe(Method):
    def __init__(self, clip: nn.Module, schedule: Schedule | None = None, frames: int = 12,
                 policy: str = "lora", rank: int = 8, trace_source: bool = False, positions: bool = True,
                 ops: merge.MergeOps | None = None):
        """``ops``: the merging functions the patched blocks and the ClipMe step call (default:
        :mod:`clipadapt.core.merge`'s; the benchmark passes timed ones)."""
        super().__init__()
        if policy not in POLICIES:
            raise ValueError(f"unknown tuning policy {policy!r}; choose one of {POLICIES}")
        visual = clip.visual
        if not hasattr(visual, "conv1"):
            raise TypeError(f"TempMe needs a ViT image encoder, not {type(visual).__name__}")
        self.clip, self.frames, self.policy = clip, frames, policy
        self.schedule = schedule if schedule is not None else Schedule()
        self.tokens = 1 + visual.grid_size[0] * visual.grid_size[1]
        self.steps: list[Step] = self.schedule.plan(len(visual.transformer.resblocks), frames, self.tokens)
        models.freeze(clip)
        if policy == "lora":
            lora.add_lora(clip, rank=rank)
        elif policy == "full":
            models.unfreeze(clip)
            for name in ("logit_scale", "logit_bias"):  # the temperature stays CLIP's
                if isinstance(getattr(clip, name, None), nn.Parameter):
                    getattr(clip, name).requires_grad_(False)
        width = visual.transformer.width
        self.clip_positions = nn.ParameterList(  # positions=False: none (the ablation of chapter 5)
            [nn.Parameter(torch.zeros(rows, width)) for rows in self.schedule.positions(frames)] if positions else [])
        self.state = patching.apply(visual, [s.intra for s in self.steps], protected=1, trace_source=trace_source,
                                    ops=ops)
        self.state.pre_attention = self._pre_attention

    # -- the ClipMe step, run by the patched block before attention ---------------------------
    def _pre_attention(self, layer: int, x: torch.Tensor, st: patching.MergeState) -> torch.Tensor:
        step = self.steps[layer]
        if layer == 0:
            st.protected = 1
            if st.trace_source:  # provenance over all T * N input tokens of the video
                st.source = _video_source(x, self.frames)
        if step.group == 1:
            return x
        g, c, ops = step.group, st.protected, st.ops
        st.size = ops.start_size(x) if st.size is None else st.size
        metric = ops.group_frames(x.detach(), g, prefix=c)  # pre-attention states, no embedding
        if len(self.clip_positions):
            pos = self.clip_positions[self.schedule.merge_layers.index(layer)]  # (clips, D)
            x = x + pos.repeat(x.shape[0] // pos.shape[0], 1)[:, None].to(x.dtype)  # each clip its row
        x = ops.group_frames(x, g, prefix=c)  # (B', g N, D)
        st.size = ops.group_frames(st.size, g, prefix=c)
        if st.source is not None:
            st.source = ops.group_frames(st.source, g, prefix=c)
        st.protected = c * g
        if step.cross > 0:
            m, _ = ops.bipartite_soft_matching(metric, step.cross, st.protected)
            if st.source is not None:
                st.source = ops.merge_source(m, x, st.source)
            x, st.size = ops.merge_wavg(m, x, st.size)
        return x

    # -- encoders -----------------------------------------------------------------------------
    def tokens_out(self, video: torch.Tensor) -> torch.Tensor:
        """Tokens leaving the image encoder, ``(B * sequences, tokens, width)``."""
        B, T = video.shape[:2]
        if T != self.frames:
            raise ValueError(f"this TempMe was planned for {self.frames} frames, got videos of {T}")
        visual = self.clip.visual
        x = visual.ln_pre(prompting._patch_tokens(visual, video.flatten(0, 1)))  # (B T, N, D)
        return visual.transformer(x)

    def frame_features(self, video: torch.Tensor) -> torch.Tensor:
        """Projected class tokens of every frame ``(B, T, D)`` (the surviving class tokens)."""
        B, T = video.shape[:2]
        x = self.tokens_out(video)
        cls = x[:, :self.state.protected].reshape(B * T, 1, -1)  # every frame's class token, in order
        return prompting.image_head(self.clip.visual, cls).reshape(B, T, -1)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """Video features ``(B, D)``: mean of the normalised frame class-token features."""
        return features.mean_pool(self.frame_features(video))

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_text(ids)

    def forward(self, video: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return features.scaled_cosine(self.encode_video(video), self.encode_text(ids), self.clip)

    # -- what the figures read ------------------------------------------------------------------
    def token_trace(self) -> list[tuple[int, int, int]]:
        """Per layer ``(sequences per video, tokens into attention, tokens into the MLP)``."""
        return [(s.sequences, s.attention_tokens, s.tokens) for s in self.steps]

    def patch_groups(self, batch: int = 1) -> torch.Tensor:
        """After a pass with ``trace_source=True``: for every input patch of every frame, the
        index of the output token (within its video) that holds it, ``(B, T, N - 1)``."""
        src = self.state.source
        if src is None:
            raise RuntimeError("build TempMe with trace_source=True and encode a video first")
        src = src.reshape(batch, -1, src.shape[-1])  # (B, tokens of the video, T N)
        groups = src.argmax(dim=1).reshape(batch, self.frames, self.tokens)
        return groups[:, :, 1:]

    def remove_patch(self) -> None:
        """The stock blocks come back (LoRA and the clip embeddings stay)."""
        patching.remove(self.clip.visual)


def _video_source(x: torch.Tensor, frames: int) -> torch.Tensor:
    """Provenance over a whole video: frame j's token i holds input j * N + i, ``(B T, N, T N)``."""
    bt, n = x.shape[:2]
    eye = torch.eye(frames * n, dtype=x.dtype, device=x.device).reshape(frames, n, frames * n)
    return eye.repeat(bt // frames, 1, 1)


def _build(clip, tokenizer, context, options, variant):
    schedule = schedule_for(options.get("schedule", "ViT-B-32"), context["frames"])
    return TempMe(clip, schedule, frames=context["frames"], policy=variant, rank=options.get("rank", 8),
                  positions=options.get("positions", True))


register(MethodSpec("TempMe", "retrieval", _build, "ImgMe + ClipMe temporal token merging; variants say what of CLIP "
                    "trains beside the clip positional embeddings (clipadapt.methods.tempme)",
                    variants=("lora", "full"), long_video_frames=LONG_VIDEO_FRAMES))
