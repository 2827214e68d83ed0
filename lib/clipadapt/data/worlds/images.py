"""The image world: small, fully known pictures of objects, and their captions.

The image world (chapter 1) draws one or two objects on a dark, noisy background. Every
object has four attributes -- a *shape*, a *colour*, a *size* and a *position* -- and every
picture comes with a caption written from templates ("a photo of a large red circle on the
left."). Captions name a random subset of the attributes, so that short prompts such as
"a photo of a circle." mean something to the text encoder after pre-training.

The vocabulary (shapes, colours, sizes, the five positions and their phrases) is shared by
the later worlds: videos move these objects between the positions, multi-label scenes hold
several of them, and the few-shot tasks ask about them under new conditions.

Everything is vectorised over the batch and deterministic given a ``torch.Generator``;
:func:`generator` derives independent, repeatable generators from a seed and split names.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...core.seeds import generator  # noqa: F401  (the worlds' named random streams)

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
COLOURS = ("red", "orange", "yellow", "green", "blue", "purple")
SIZES = ("small", "large")
POSITIONS = ("left", "right", "top", "bottom", "centre")
ATTRIBUTES = ("shape", "colour", "size", "position")
VALUES = {"shape": SHAPES, "colour": COLOURS, "size": SIZES, "position": POSITIONS}

RGB = {
    "red": (0.90, 0.12, 0.12),
    "orange": (0.98, 0.55, 0.08),
    "yellow": (0.95, 0.92, 0.15),
    "green": (0.15, 0.75, 0.25),
    "blue": (0.15, 0.35, 0.98),
    "purple": (0.62, 0.22, 0.85),
}
POSITION_PHRASES = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "centre": "in the centre",
}
# where an object's centre may fall, as (x range, y range) in fractions of the image side
POSITION_BOXES = {
    "left": ((0.22, 0.28), (0.40, 0.60)),
    "right": ((0.72, 0.78), (0.40, 0.60)),
    "top": ((0.40, 0.60), (0.22, 0.28)),
    "bottom": ((0.40, 0.60), (0.72, 0.78)),
    "centre": ((0.42, 0.58), (0.42, 0.58)),
}
# object radius as a fraction of the image side
SIZE_RADII = {"small": (0.12, 0.14), "large": (0.19, 0.22)}
# two objects in one picture sit on opposite sides (centres at least 0.44 apart, radii at
# most 0.22), so they never overlap
PAIRS = (("left", "right"), ("top", "bottom"))

CAPTION_TEMPLATES = (
    "a photo of {}.",
    "{}.",
    "there is {}.",
    "an image of {}.",
    "a picture showing {}.",
)
# the prompts used to classify one attribute zero-shot ({} is the attribute's value)
ZERO_SHOT_PROMPTS = {
    "shape": ("a photo of a {}.", "a {}.", "there is a {}.", "an image of a {}."),
    "colour": ("a photo of a {} object.", "a {} object.", "there is a {} object.", "an image of a {} object."),
    "size": ("a photo of a {} object.", "a {} object.", "there is a {} object.", "an image of a {} object."),
    "position": ("a photo of an object {}.", "an object {}.", "there is an object {}.", "an image of an object {}."),
}
# probability that a training caption names each attribute of an object
MENTION_PROB = {"shape": 0.85, "colour": 0.7, "size": 0.5, "position": 0.5}


def with_article(phrase: str) -> str:
    """``"orange circle"`` -> ``"an orange circle"``."""
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def phrase(shape: int = -1, colour: int = -1, size: int = -1, position: int = -1) -> str:
    """Describe one object from attribute indices (-1: leave the attribute out)."""
    words = []
    if size >= 0:
        words.append(SIZES[size])
    if colour >= 0:
        words.append(COLOURS[colour])
    words.append(SHAPES[shape] if shape >= 0 else "object")
    text = with_article(" ".join(words))
    if position >= 0:
        text += " " + POSITION_PHRASES[POSITIONS[position]]
    return text


def prompts_for(attribute: str, templates: tuple[str, ...] | None = None) -> list[list[str]]:
    """Zero-shot prompts: one list of templated prompts per value of ``attribute``."""
    if attribute not in VALUES:
        raise ValueError(f"unknown attribute {attribute!r}; expected one of {ATTRIBUTES}")
    templates = templates or ZERO_SHOT_PROMPTS[attribute]
    words = [POSITION_PHRASES[v] if attribute == "position" else v for v in VALUES[attribute]]
    return [[t.format(w) for t in templates] for w in words]


@dataclass
class Scenes:
    """A batch of scenes. ``attrs[b, k]`` holds (shape, colour, size, position) indices of
    object ``k`` of scene ``b``, or -1 where the scene has fewer objects."""

    attrs: torch.Tensor  # (B, K, 4) long
    centre: torch.Tensor  # (B, K, 2) float, (x, y) in [0, 1]
    radius: torch.Tensor  # (B, K) float, fraction of the image side
    rgb: torch.Tensor  # (B, K, 3) float
    background: torch.Tensor  # (B,) float grey level
    noise_seed: int = 0  # seeds the pixel noise, so that rendering twice gives the same pixels

    def __len__(self) -> int:
        return self.attrs.shape[0]

    @property
    def n_objects(self) -> torch.Tensor:
        return (self.attrs[..., 0] >= 0).sum(1)

    def attribute(self, name: str, k: int = 0) -> torch.Tensor:
        """Labels of attribute ``name`` of object ``k`` (shape ``(B,)``)."""
        return self.attrs[:, k, ATTRIBUTES.index(name)]


@dataclass
class Captions:
    """Captions and what each one claims: ``mentions[b, k]`` holds the attribute indices
    that caption ``b`` states of its ``k``-th described object (-1: not stated; a row of -2:
    no such object described)."""

    texts: list[str]
    mentions: torch.Tensor  # (B, K, 4) long

    def __len__(self) -> int:
        return len(self.texts)


def _uniform(g: torch.Generator, lo, hi, shape) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=g)


class ImageWorld:
    """Pictures of one or two objects with templated captions.

    ``image_size`` is the side in pixels; ``p_two_objects`` the chance that a scene holds
    two objects (on opposite sides) instead of one.
    """

    max_objects = 2

    STYLES = {"fill": ("solid", "outline"), "background": ("dark", "light")}

    def __init__(self, image_size: int = 64, p_two_objects: float = 0.0, noise: float = 0.03,
                 fill: str = "solid", background: str = "dark"):
        if image_size < 16:
            raise ValueError(f"image_size must be at least 16 pixels, got {image_size}")
        if not 0.0 <= p_two_objects <= 1.0:
            raise ValueError(f"p_two_objects must lie in [0, 1], got {p_two_objects}")
        if fill not in self.STYLES["fill"] or background not in self.STYLES["background"]:
            raise ValueError(f"fill must be one of {self.STYLES['fill']} and background one of "
                             f"{self.STYLES['background']}, got {fill!r} and {background!r}")
        self.image_size = image_size
        self.p_two_objects = p_two_objects
        self.noise = noise
        self.fill = fill  # "outline": only a band at the edge of each shape is painted
        self.background = background  # "light": grey levels 0.6-0.9 instead of 0.05-0.35

    # -- scenes -----------------------------------------------------------------------
    def sample(self, n: int, g: torch.Generator, **fixed: torch.Tensor | int) -> Scenes:
        """Sample ``n`` scenes. Keyword arguments fix an attribute of the first object,
        e.g. ``sample(8, g, shape=0)`` draws eight circles."""
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        for key in fixed:
            if key not in ATTRIBUTES:
                raise ValueError(f"cannot fix {key!r}; expected one of {ATTRIBUTES}")
        K = self.max_objects
        attrs = torch.full((n, K, 4), -1, dtype=torch.long)
        for a, name in enumerate(ATTRIBUTES):
            attrs[:, :, a] = torch.randint(len(VALUES[name]), (n, K), generator=g)
        two = torch.rand(n, generator=g) < self.p_two_objects
        # positions of pairs: opposite sides, in a random order
        pair = torch.randint(len(PAIRS), (n,), generator=g)
        flip = torch.randint(2, (n,), generator=g).bool()
        first = torch.tensor([POSITIONS.index(p[0]) for p in PAIRS])[pair]
        second = torch.tensor([POSITIONS.index(p[1]) for p in PAIRS])[pair]
        attrs[two, 0, 3] = torch.where(flip, second, first)[two]
        attrs[two, 1, 3] = torch.where(flip, first, second)[two]
        attrs[~two, 1, :] = -1
        for key, value in fixed.items():
            attrs[:, 0, ATTRIBUTES.index(key)] = torch.as_tensor(value, dtype=torch.long)
        for a, name in enumerate(ATTRIBUTES):
            col = attrs[:, :, a]
            if ((col >= len(VALUES[name])) | (col < -1)).any():
                raise ValueError(f"{name} index out of range 0..{len(VALUES[name]) - 1}")
        centre = torch.zeros(n, K, 2)
        radius = torch.zeros(n, K)
        rgb = torch.zeros(n, K, 3)
        for k in range(K):
            pos = attrs[:, k, 3].clamp(min=0)
            boxes = torch.tensor([POSITION_BOXES[p] for p in POSITIONS])[pos]  # (n, 2, 2)
            u = torch.rand(n, 2, generator=g)
            centre[:, k] = boxes[:, :, 0] + (boxes[:, :, 1] - boxes[:, :, 0]) * u
            radii = torch.tensor([SIZE_RADII[s] for s in SIZES])[attrs[:, k, 2].clamp(min=0)]
            radius[:, k] = radii[:, 0] + (radii[:, 1] - radii[:, 0]) * torch.rand(n, generator=g)
            base = torch.tensor([RGB[c] for c in COLOURS])[attrs[:, k, 1].clamp(min=0)]
            rgb[:, k] = (base + 0.04 * torch.randn(n, 3, generator=g)).clamp(0, 1)
        lo, hi = (0.05, 0.35) if self.background == "dark" else (0.6, 0.9)
        background = _uniform(g, lo, hi, (n,))
        noise_seed = int(torch.randint(2**31 - 1, (1,), generator=g))
        return Scenes(attrs, centre, radius, rgb, background, noise_seed)

    # -- pixels -----------------------------------------------------------------------
    def render(self, scenes: Scenes) -> torch.Tensor:
        """Pixels of the scenes, ``(B, 3, H, W)`` floats in [0, 1] (anti-aliased 2x)."""
        n, S = len(scenes), 2 * self.image_size
        coords = (torch.arange(S, dtype=torch.float32) + 0.5) / S
        img = scenes.background.view(n, 1, 1, 1).expand(n, 3, S, S).clone()
        for k in range(scenes.attrs.shape[1]):  # any number of objects (the scene world draws 4)
            for s, name in enumerate(SHAPES):
                idx = (scenes.attrs[:, k, 0] == s).nonzero().flatten()
                if len(idx) == 0:
                    continue
                r = scenes.radius[idx, k].view(-1, 1, 1).clamp(min=1e-3)
                dx = (coords.view(1, 1, S) - scenes.centre[idx, k, 0].view(-1, 1, 1)) / r
                dy = (coords.view(1, S, 1) - scenes.centre[idx, k, 1].view(-1, 1, 1)) / r
                mask = shape_mask(name, dx, dy)
                if self.fill == "outline":  # the shape minus the same shape shrunk by 35%
                    mask = mask & ~shape_mask(name, dx / 0.65, dy / 0.65)
                mask = mask.unsqueeze(1)  # (m, 1, S, S)
                img[idx] = torch.where(mask, scenes.rgb[idx, k].view(-1, 3, 1, 1), img[idx])
        img = F.avg_pool2d(img, 2)
        if self.noise > 0:
            g = torch.Generator().manual_seed(scenes.noise_seed)
            img = img + self.noise * torch.randn(img.shape, generator=g)
        return img.clamp(0, 1)

    # -- words ------------------------------------------------------------------------
    def captions(self, scenes: Scenes, g: torch.Generator, full: bool = False) -> Captions:
        """One caption per scene. ``full=True`` names every attribute with the first
        template; otherwise each attribute is named with :data:`MENTION_PROB` and the
        template is drawn at random (the shape is kept when nothing else would be)."""
        n, K = scenes.attrs.shape[:2]
        probs = torch.tensor([MENTION_PROB[a] for a in ATTRIBUTES])
        keep = torch.ones(n, K, 4, dtype=torch.bool) if full else torch.rand(n, K, 4, generator=g) < probs
        keep[..., 0] |= ~keep.any(-1)
        mentions = torch.where(keep, scenes.attrs, torch.full_like(scenes.attrs, -1))
        mentions[scenes.attrs[..., 0] < 0] = -2
        template = torch.zeros(n, dtype=torch.long) if full else torch.randint(len(CAPTION_TEMPLATES), (n,), generator=g)
        texts = []
        for b in range(n):
            parts = [phrase(*mentions[b, k].tolist()) for k in range(K) if mentions[b, k, 0] != -2]
            texts.append(CAPTION_TEMPLATES[int(template[b])].format(" and ".join(parts)))
        return Captions(texts, mentions)

    def batch(self, n: int, g: torch.Generator, full_captions: bool = False) -> dict:
        scenes = self.sample(n, g)
        return {
            "images": self.render(scenes),
            "captions": self.captions(scenes, g, full=full_captions),
            "scenes": scenes,
        }


def shape_mask(name: str, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Boolean mask of shape ``name`` at offsets ``dx``, ``dy`` measured in object radii
    (they broadcast to (B, S, S)); every shape fits in the unit square around its centre."""
    ax, ay = dx.abs(), dy.abs()
    if name == "circle":
        return dx * dx + dy * dy <= 1.0
    if name == "square":
        return (ax <= 0.82) & (ay <= 0.82)
    if name == "triangle":
        return (dy <= 0.8) & (ax <= (dy + 1.0) / 1.8)
    if name == "diamond":
        return ax + ay <= 1.1
    if name == "cross":
        return ((ax <= 0.3) & (ay <= 1.0)) | ((ay <= 0.3) & (ax <= 1.0))
    raise ValueError(f"unknown shape {name!r}; expected one of {SHAPES}")


def consistent(mentions: torch.Tensor, attrs: torch.Tensor) -> torch.Tensor:
    """``C[j, i]`` is True when caption ``j`` is a true description of scene ``i``: every
    object it describes can be matched to a different object of the scene that has every
    attribute it states. Used as the positives of the contrastive loss (a caption that
    fits several pictures of a batch is a positive for each of them)."""
    # mentions (J, K, 4), attrs (I, K, 4) -> fits[j, i, k, l]: described k fits object l
    m = mentions[:, None, :, None, :]
    a = attrs[None, :, None, :, :]
    fits = ((m == -1) | (m == a)).all(-1) & (attrs[None, :, None, :, 0] >= 0)
    described = mentions[:, :, 0] != -2  # (J, K)
    K = mentions.shape[1]
    out = torch.zeros(mentions.shape[0], attrs.shape[0], dtype=torch.bool)
    for perm in itertools.permutations(range(K)):
        ok = torch.ones_like(out)
        for k, l in enumerate(perm):
            ok &= fits[:, :, k, l] | ~described[:, k, None]
        out |= ok
    return out
