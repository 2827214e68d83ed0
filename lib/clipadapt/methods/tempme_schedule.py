"""TempMe's merging schedule as data, checked against the model it is meant for.

A :class:`Schedule` says what every layer of the image encoder does to a video of ``frames``
frames of ``tokens`` tokens (class token included):

* layers before the first of ``merge_layers`` are **ImgMe** blocks: ToMe inside each frame,
  ``r`` tokens per layer, after attention;
* merge layer ``i`` is a **ClipMe** block that joins ``frames_per_merge[i]`` neighbouring clips
  into one sequence, merges ``1 - keep_cross`` of its tokens across the joined clips before
  attention, then ``1 - keep_intra`` of what is left after attention;
* later layers that are not merge layers merge ``1 - keep_intra`` of their tokens after
  attention (intra-clip only).

:meth:`Schedule.plan` turns this into one :class:`Step` per layer with the token counts,
mirroring TempMe's ``modeling.py`` (``get_video_feat``): cross ``r0 = min(int(n g (1 - R_C)),
(n - c) g // 2)`` and intra ``r1 = min(int((n g - r0)(1 - R_I)), ((n - c) g - r0) // 2)`` for
``n`` tokens and ``c`` class tokens per clip before joining ``g`` clips. The defaults are the
official ViT-B/32 ones (``tome_r=2``, ``merge_layer=8-9-10``, ``merge_frame_num=2-2-3``,
``merge_token_proportion=30-10``): 12 x 50 tokens become 1 x 97.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    layer: int
    group: int  # clips joined before attention (1: none)
    cross: int  # tokens merged across clips before attention
    intra: int  # tokens merged after attention
    protected: int  # class tokens per sequence (never merged)
    sequences: int  # sequences per video in this layer
    attention_tokens: int  # tokens per sequence entering attention
    tokens: int  # tokens per sequence leaving the layer (into the MLP)
    positions: int  # clip positional embeddings this layer adds (clips before joining; 0: none)


@dataclass(frozen=True)
class Schedule:
    r: int = 2
    merge_layers: tuple[int, ...] = (8, 9, 10)
    frames_per_merge: tuple[int, ...] = (2, 2, 3)
    keep_cross: float = 0.7  # R_C
    keep_intra: float = 0.9  # R_I

    @classmethod
    def off(cls) -> "Schedule":
        """No merging and no grouping: the stock encoder, frame by frame."""
        return cls(r=0, merge_layers=(), frames_per_merge=(), keep_cross=1.0, keep_intra=1.0)

    def plan(self, layers: int, frames: int, tokens: int) -> list[Step]:
        """One :class:`Step` per layer for videos of ``frames`` frames of ``tokens`` tokens
        (class token included) on an encoder of ``layers`` layers; a clear error if the
        schedule does not fit."""
        ml, fm = tuple(self.merge_layers), tuple(self.frames_per_merge)
        if len(ml) != len(fm):
            raise ValueError(f"merge_layers {ml} and frames_per_merge {fm} must have the same length")
        if any(b <= a for a, b in zip(ml, ml[1:])) or any(not 0 <= m < layers for m in ml):
            raise ValueError(f"merge_layers {ml} must increase and lie in [0, {layers - 1}] "
                             f"(the encoder has {layers} layers)")
        if any(g < 1 for g in fm):
            raise ValueError(f"frames_per_merge {fm} must be >= 1")
        if self.r < 0:
            raise ValueError(f"r (ImgMe tokens per layer) must be >= 0, got {self.r}")
        for name in ("keep_cross", "keep_intra"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in (0, 1], got {getattr(self, name)}")
        steps, n, c, clips = [], tokens, 1, frames
        first = ml[0] if ml else layers
        for layer in range(layers):
            g, cross, positions = 1, 0, 0
            if layer in ml:
                g = fm[ml.index(layer)]
                if clips % g:
                    raise ValueError(f"merge layer {layer} joins {g} clips, but {clips} clips remain "
                                     f"(frames={frames}, frames_per_merge={fm}): {clips} is not a multiple of {g}")
                cross = min(_share(n * g, 1 - self.keep_cross), (n - c) * g // 2)
                positions, n, c, clips = clips, n * g - cross, c * g, clips // g
            if layer < first:
                intra = self.r
                if intra > (n - c) // 2:
                    raise ValueError(f"r={self.r} does not fit ImgMe layer {layer}: a frame has {n} tokens "
                                     f"there, at most {(n - c) // 2} can merge")
            elif layer in ml:
                intra = min(_share(n, 1 - self.keep_intra), (n - c) // 2)
            else:
                intra = min(_share(n, 1 - self.keep_intra), (n - c) // 2)
            steps.append(Step(layer, g, cross, intra, c, clips, n, n - intra, positions))
            n -= intra
        return steps

    def positions(self, frames: int) -> list[int]:
        """Rows of the clip positional embedding of each merge layer: the clips present
        before it joins them (12, 6, 3 for the defaults)."""
        out, clips = [], frames
        for g in self.frames_per_merge:
            out.append(clips)
            clips //= max(g, 1)
        return out


def _share(n: int, fraction: float) -> int:
    """``int(n * fraction)`` as TempMe's code computes it, guarded against 0.3 = 0.29999..."""
    return int(n * fraction + 1e-9)


# ViT-B/32: the official defaults. ViT-B/16: the official code has no configuration; this is
# OUR reconstruction (reference notes, section 2.5): r = 10 and 40% / 20% merged, which gives
# 1 x 127 output tokens as the paper reports. Tiny CLIP (3 layers, 4 x 4 patches, 8 frames):
# ours, one ImgMe layer then two ClipMe layers, 8 -> 4 -> 1 clips.
SCHEDULES = {
    "ViT-B-32": Schedule(),
    "ViT-B-16": Schedule(r=10, keep_cross=0.6, keep_intra=0.8),
    "tiny-clip": Schedule(r=2, merge_layers=(1, 2), frames_per_merge=(2, 4)),
}

# Long videos (ActivityNet Captions and DiDeMo): the paper samples 64 frames and joins them
# 64 -> 16 -> 4 -> 1 clips (as a secondary source quotes it; reference notes, section 2.4).
# Which layers join them is OURS: the 12-frame schedule's 8, 9 and 10, each joining 4 clips,
# with its merge shares (the official code has no long-video configuration).
LONG_VIDEO_FRAMES = 64
LONG_SCHEDULES = {name: dataclasses.replace(SCHEDULES[name], frames_per_merge=(4, 4, 4))
                  for name in ("ViT-B-32", "ViT-B-16")}
