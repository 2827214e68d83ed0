"""The video world (chapters 3-5): the image world's objects moving or appearing, with
captions whose meaning depends on the order of the frames, written as real mp4 files."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from ..video import write_mp4
from .images import (
    ATTRIBUTES,
    COLOURS,
    POSITION_BOXES,
    POSITIONS,
    RGB,
    SIZE_RADII,
    SIZES,
    VALUES,
    ImageWorld,
    Scenes,
    phrase,
)

MOVE_TEMPLATE = "{} moves from {} to {}."
APPEAR_TEMPLATE = "{} appears, then {}."
POSITION_NOUNS = {"left": "the left", "right": "the right", "top": "the top", "bottom": "the bottom",
                  "centre": "the centre"}


@dataclass
class VideoScenes:
    """A batch of short videos. ``kind[b]`` is 0 for "X moves from A to B" (one object;
    ``attrs[b, 0]`` its attributes, ``start``/``end`` position indices) and 1 for "X appears,
    then Y" (``attrs[b, 0]`` shown from the first frame, ``attrs[b, 1]`` from the middle)."""

    kind: torch.Tensor  # (B,)
    attrs: torch.Tensor  # (B, 2, 4)
    start: torch.Tensor  # (B,) position index
    end: torch.Tensor  # (B,) position index
    base: Scenes  # sizes, colours, background and noise of the pictures

    def __len__(self) -> int:
        return len(self.kind)


class VideoWorld:
    """Videos of the image world's objects whose captions depend on the order of frames.

    * ``move``: one object travels in a straight line from one side to the opposite side,
      "a red circle moves from the left to the right."; its reversal twin travels back;
    * ``appear``: one object is there from the start and a second appears half-way,
      "a red square appears, then a blue circle."; the twin swaps the order.

    Frame ``t`` of a move shows the object at ``start + t / (T - 1) * (end - start)``, so a
    move and its twin hold the same frames in opposite orders: the average of the frames'
    features cannot tell them apart. (An ``appear`` twin also shows each object for a
    different number of frames, which an average can partly see.)
    """

    def __init__(self, image_size: int = 64, frames: int = 12, p_appear: float = 0.3):
        if frames < 2:
            raise ValueError(f"a video needs at least 2 frames, got {frames}")
        self.image = ImageWorld(image_size, p_two_objects=1.0)
        self.frames = frames
        self.p_appear = p_appear

    def sample(self, n: int, g: torch.Generator) -> VideoScenes:
        base = self.image.sample(n, g)  # two objects on opposite sides: left/right or top/bottom
        kind = (torch.rand(n, generator=g) < self.p_appear).long()
        start = base.attrs[:, 0, 3].clone()
        end = base.attrs[:, 1, 3].clone()
        return VideoScenes(kind, base.attrs.clone(), start, end, base)

    def reversed(self, v: VideoScenes) -> VideoScenes:
        """The twins: moves run backwards, and the two objects of ``appear`` swap turns."""
        attrs = v.attrs.clone()
        appear = v.kind == 1
        attrs[appear, 0], attrs[appear, 1] = v.attrs[appear, 1], v.attrs[appear, 0]
        base = dataclasses.replace(v.base, centre=v.base.centre.clone(), radius=v.base.radius.clone(), rgb=v.base.rgb.clone())
        base.centre[appear, 0], base.centre[appear, 1] = v.base.centre[appear, 1], v.base.centre[appear, 0]
        base.radius[appear, 0], base.radius[appear, 1] = v.base.radius[appear, 1], v.base.radius[appear, 0]
        base.rgb[appear, 0], base.rgb[appear, 1] = v.base.rgb[appear, 1], v.base.rgb[appear, 0]
        return VideoScenes(v.kind.clone(), attrs, v.end.clone(), v.start.clone(), base)

    # the attribute that near miss j changes: the words a caption can differ in, in turn,
    # until each attribute's other values are used up (5 colours, 4 shapes, 1 size)
    MISS_ORDER = ("colour", "shape", "size", "colour", "shape", "colour", "shape", "colour", "shape", "colour")

    def near_misses(self, v: VideoScenes, g: torch.Generator, k: int) -> VideoScenes:
        """``v`` followed by ``k`` near misses of each video: copies whose first object
        differs in exactly one attribute (:attr:`MISS_ORDER`), never twice in the same value;
        the motion, the background and the noise stay. Shape ``(B * (1 + k),)``, video ``b``
        of miss ``j`` at ``(j + 1) * B + b``."""
        if not 0 <= k <= len(self.MISS_ORDER):
            raise ValueError(f"the number of near misses must be in 0..{len(self.MISS_ORDER)}, got {k}")
        # per video and attribute, the other values in a random order: (B, n_values - 1)
        shifts = {name: torch.argsort(torch.rand(len(v), len(VALUES[name]) - 1, generator=g), 1) + 1
                  for name in ("colour", "shape", "size")}
        out = [v]
        for j, name in enumerate(self.MISS_ORDER[:k]):
            a = ATTRIBUTES.index(name)
            attrs = v.attrs.clone()
            attrs[:, 0, a] = (v.attrs[:, 0, a] + shifts[name][:, self.MISS_ORDER[:j].count(name)]) % len(VALUES[name])
            base = dataclasses.replace(v.base, attrs=attrs.clone(), rgb=v.base.rgb.clone(), radius=v.base.radius.clone())
            if name == "colour":
                rgb = torch.tensor([RGB[c] for c in COLOURS])[attrs[:, 0, 1]]
                base.rgb[:, 0] = (rgb + 0.04 * torch.randn(len(v), 3, generator=g)).clamp(0, 1)
            if name == "size":
                radii = torch.tensor([SIZE_RADII[s] for s in SIZES])[attrs[:, 0, 2]]
                base.radius[:, 0] = radii[:, 0] + (radii[:, 1] - radii[:, 0]) * torch.rand(len(v), generator=g)
            out.append(VideoScenes(v.kind.clone(), attrs, v.start.clone(), v.end.clone(), base))
        return _concat_videos(out)

    def render(self, v: VideoScenes) -> torch.Tensor:
        """Pixels ``(B, T, 3, H, W)`` in [0, 1]."""
        T, n = self.frames, len(v)
        out = []
        boxes = torch.tensor([[sum(POSITION_BOXES[p][0]) / 2, sum(POSITION_BOXES[p][1]) / 2] for p in POSITIONS])
        a, b = boxes[v.start], boxes[v.end]  # (B, 2) centres of the start and end boxes
        for t in range(T):
            frac = t / (T - 1)
            attrs = v.attrs.clone()
            centre = v.base.centre.clone()
            move = v.kind == 0
            centre[move, 0] = a[move] + frac * (b[move] - a[move])
            attrs[move, 1] = -1  # a move shows one object
            late = (v.kind == 1) & (t < T // 2)
            attrs[late, 1] = -1  # the second object appears half-way
            frame = dataclasses.replace(v.base, attrs=attrs, centre=centre, noise_seed=v.base.noise_seed + t)
            out.append(self.image.render(frame))
        return torch.stack(out, 1)

    def captions(self, v: VideoScenes) -> list[str]:
        texts = []
        for b in range(len(v)):
            first = phrase(*[int(x) for x in v.attrs[b, 0, :3]])
            if int(v.kind[b]) == 0:
                texts.append(MOVE_TEMPLATE.format(first, POSITION_NOUNS[POSITIONS[int(v.start[b])]],
                                                  POSITION_NOUNS[POSITIONS[int(v.end[b])]]))
            else:
                second = phrase(*[int(x) for x in v.attrs[b, 1, :3]])
                texts.append(APPEAR_TEMPLATE.format(first, second))
        return texts


def _concat_videos(parts: list[VideoScenes]) -> VideoScenes:
    """One batch from several (the first part's noise seed is kept)."""
    cat = lambda get: torch.cat([get(p) for p in parts])  # noqa: E731
    base = dataclasses.replace(parts[0].base, attrs=cat(lambda p: p.base.attrs), centre=cat(lambda p: p.base.centre),
                               radius=cat(lambda p: p.base.radius), rgb=cat(lambda p: p.base.rgb),
                               background=cat(lambda p: p.base.background))
    return VideoScenes(cat(lambda p: p.kind), cat(lambda p: p.attrs), cat(lambda p: p.start), cat(lambda p: p.end), base)


def write_videos(world: VideoWorld, n: int, g: torch.Generator, folder, fps: int = 8,
                 near_misses: int = 0) -> list[dict]:
    """Render ``n`` videos and their reversal twins as mp4 files in ``folder`` and return
    records ``{"video": file name, "caption": text, "twin": file name of the twin}``.
    ``near_misses``: add that many one-attribute variants of each video (and their twins),
    distractors that a retrieval model must tell apart by one word
    (:meth:`VideoWorld.near_misses`): ``2 * n * (1 + near_misses)`` videos in all."""
    folder = Path(folder)
    v = world.near_misses(world.sample(n, g), g, near_misses)
    records = []
    for tag, scenes in (("a", v), ("b", world.reversed(v))):
        pixels = world.render(scenes)
        for i, caption in enumerate(world.captions(scenes)):
            name = f"video{i:05d}{tag}.mp4"
            write_mp4(folder / name, pixels[i].permute(0, 2, 3, 1), fps=fps)
            records.append({"video": name, "caption": caption, "twin": f"video{i:05d}{'b' if tag == 'a' else 'a'}.mp4"})
    return records
