"""The multi-label scene world (chapter 6): pictures of several objects whose labels
co-occur by scene type."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .images import COLOURS, RGB, SHAPES, ImageWorld, Scenes, _uniform, generator

# a class is a coloured shape ("red circle"); a scene *type* is a colour: a red scene holds
# mostly red objects of different shapes, so "red circle" and "red square" go together.
# The tiny CLIP's text encoder places "a photo of a red circle." nearer "a photo of a red
# square." than "a photo of a blue circle." (colour words dominate its text features), so
# the cosines of the class names reveal which labels co-occur (chapter 6 measures it).
SCENE_CLASSES = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)  # 30 classes, colour-major
SCENE_TYPES = COLOURS
# quadrant centres of up to four objects, in fractions of the image side
QUADRANTS = ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75))


@dataclass
class MultiLabelScenes:
    """Scenes of the multi-label world: ``scenes`` (for rendering), the scene type of each
    picture, and its labels ``targets[b, c]`` (1: class ``c`` is in the picture)."""

    scenes: Scenes
    scene_type: torch.Tensor  # (B,) index into SCENE_TYPES
    targets: torch.Tensor  # (B, C) float 0/1

    def __len__(self) -> int:
        return len(self.scene_type)


class SceneWorld:
    """Pictures of 2 to 4 small objects, one per quadrant, whose labels co-occur by scene type.

    A scene draws its type (a colour), then ``2..max_objects`` different shapes; each object
    takes the scene's colour, except that with probability ``p_stray`` it takes another
    colour at random (so co-occurrence is strong but not a rule). The labels are the
    coloured shapes present, a multi-hot vector over :data:`SCENE_CLASSES`.

    ``hidden`` names a shape that is **hard to see**: its objects are drawn at
    ``faint`` of their contrast against the background and at ``0.6`` of their size, so
    that "red cross" is barely visible but keeps co-occurring with the red things that are
    easy to see (the setting of SCPNet's claim: a label prior moves evidence from labels
    that are seen to labels that go with them). Labels are unchanged: a faint cross is
    present.
    """

    classnames = SCENE_CLASSES

    def __init__(self, image_size: int = 64, p_stray: float = 0.2, max_objects: int = 4, noise: float = 0.03,
                 hidden: str | None = None, faint: float = 0.25):
        if hidden is not None and hidden not in SHAPES:
            raise ValueError(f"hidden must be one of the shapes {SHAPES} or None, got {hidden!r}")
        if not 0.0 < faint <= 1.0:
            raise ValueError(f"faint (the contrast kept by hidden objects) must lie in (0, 1], got {faint}")
        if not 0.0 <= p_stray <= 1.0:
            raise ValueError(f"p_stray must lie in [0, 1], got {p_stray}")
        if not 2 <= max_objects <= len(QUADRANTS):
            raise ValueError(f"max_objects must lie in [2, {len(QUADRANTS)}], got {max_objects}")
        self.painter = ImageWorld(image_size, noise=noise)
        self.image_size, self.p_stray, self.max_objects = image_size, p_stray, max_objects
        self.hidden, self.faint = hidden, faint

    def sample(self, n: int, g: torch.Generator) -> MultiLabelScenes:
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        K, C = len(QUADRANTS), len(SCENE_CLASSES)
        kind = torch.randint(len(SCENE_TYPES), (n,), generator=g)
        count = torch.randint(2, self.max_objects + 1, (n,), generator=g)
        shapes = torch.rand(n, len(SHAPES), generator=g).argsort(1)[:, :K]  # distinct shapes
        stray = torch.rand(n, K, generator=g) < self.p_stray
        other = (kind[:, None] + torch.randint(1, len(COLOURS), (n, K), generator=g)) % len(COLOURS)
        colours = torch.where(stray, other, kind[:, None].expand(n, K))
        slots = torch.rand(n, K, generator=g).argsort(1)  # which quadrant each object takes
        present = torch.arange(K)[None] < count[:, None]  # (n, K)
        attrs = torch.full((n, K, 4), -1, dtype=torch.long)
        attrs[..., 0] = torch.where(present, shapes, -1)
        attrs[..., 1] = torch.where(present, colours, -1)
        attrs[..., 2] = torch.where(present, 0, -1)  # small
        centre = torch.tensor(QUADRANTS)[slots] + 0.03 * (2 * torch.rand(n, K, 2, generator=g) - 1)
        radius = 0.11 + 0.02 * torch.rand(n, K, generator=g)
        base = torch.tensor([RGB[c] for c in COLOURS])[colours]
        rgb = (base + 0.04 * torch.randn(n, K, 3, generator=g)).clamp(0, 1)
        background = _uniform(g, 0.05, 0.35, (n,))
        if self.hidden is not None:  # faint and small: the colour barely shows, the shape less
            hid = present & (shapes == SHAPES.index(self.hidden))  # (n, K)
            rgb = torch.where(hid[..., None], background[:, None, None] + self.faint * (rgb - background[:, None, None]),
                              rgb)
            radius = torch.where(hid, 0.6 * radius, radius)
        noise_seed = int(torch.randint(2**31 - 1, (1,), generator=g))
        targets = torch.zeros(n, C)
        cls = colours * len(SHAPES) + shapes  # (n, K) index into SCENE_CLASSES
        targets.scatter_(1, torch.where(present, cls, cls[:, :1]), 1.0)  # absent slots repeat the first object
        return MultiLabelScenes(Scenes(attrs, centre, radius, rgb, background, noise_seed), kind, targets)

    def render(self, s: MultiLabelScenes) -> torch.Tensor:
        """Pixels ``(B, 3, H, W)`` in [0, 1]."""
        return self.painter.render(s.scenes)

    def cooccurrence(self, n: int = 20000, seed: int = 0) -> torch.Tensor:
        """``P[i, j]``: the empirical chance that class ``j`` is present when ``i`` is (the
        structure a prior should reveal), from ``n`` sampled scenes."""
        t = self.sample(n, generator(seed, "scenes", "cooccurrence")).targets
        return (t.t() @ t) / t.sum(0).clamp(min=1)[:, None]
