"""Which frames of a video a method sees: each official dataloader's rule, as pure functions of
the video's frame count and frame rate.

A recipe names its rule (the option ``frames`` of the retrieval methods' recipe files,
``clipadapt/recipes/*.toml``; absent: ``"segments"``) and :class:`clipadapt.data.video.VideoTextDataset`
applies it, in training and at test:

* ``"segments"`` -- clipadapt's own rule, which the tiny and colab profiles keep: ``k`` equal
  segments, a random frame of each in training and the middle one at test
  (:func:`segment_indices`);
* ``"clip4clip"`` -- CLIP4Clip (the mean pooling rows): one frame a second, then ``k`` evenly
  spaced among those (:func:`clip4clip`); the same in training and at test;
* ``"xpool"`` -- X-Pool, the code VoP builds on (VoP ships none): ``k`` equal segments and the
  middle frame of each (:func:`xpool`), X-Pool's default ``'uniform'`` in training and at test;
* ``"tempme"`` -- TempMe: one frame a second, then ``k`` evenly spaced (:func:`tempme`), with
  its own rounding of the rate and its own rule for short videos.

Every official rule is a fixed function of the video, so training sees the same frames every
epoch; what varies between epochs is the augmentation, which these loaders apply to the raw
frames (:func:`clipadapt.data.video.augment_raw`). The functions return at most ``k``
positions (CLIP4Clip: fewer for a video shorter than ``k`` seconds); :func:`indices` gives
exactly ``k``, the last position repeated where fewer came (X-Pool's own padding; CLIP4Clip
instead pads with blank frames that a mask leaves out of the mean, which our models do not
take: the recipe card says so).

"evenly spaced" is NumPy's ``linspace(0, L - 1, k, dtype=int)``, whose integer cast truncates:
floor, not round. The official positions are written here in our words; tests/test_frames.py
checks them against transcriptions of the official code.
"""

from __future__ import annotations

import numpy as np
import torch

RULES = ("segments", "clip4clip", "xpool", "tempme")
DEFAULT = "segments"  # tiny and colab, and a recipe that names no rule


def _check(n_frames: int, k: int, fps: float | None = None) -> None:
    if n_frames < 1 or k < 1:
        raise ValueError(f"need a video of at least one frame and k >= 1, got n_frames={n_frames}, k={k}")
    if fps is not None and not fps >= 1:
        raise ValueError(f"a one-frame-a-second rule needs a rate of at least 1 frame a second, got fps={fps}")


def _spread(length: int, k: int) -> list[int]:
    """``k`` evenly spaced positions in ``range(length)``, NumPy's ``linspace(..., dtype=int)``:
    the float positions truncated to integers."""
    return [int(i) for i in np.linspace(0, length - 1, num=k).astype(int)]


def segment_indices(n_frames: int, k: int = 12, train: bool = False,
                    generator: torch.Generator | None = None) -> list[int]:
    """One frame from each of ``k`` equal segments: random in training, the middle at test.
    Fewer than ``k`` frames: all of them, then the last one repeated."""
    if n_frames < 1 or k < 1:
        raise ValueError(f"need at least one frame and k >= 1, got n_frames={n_frames}, k={k}")
    if n_frames < k:
        return list(range(n_frames)) + [n_frames - 1] * (k - n_frames)
    edges = np.linspace(0, n_frames, k + 1)
    out = []
    for s in range(k):
        lo, hi = int(np.ceil(edges[s])), max(int(np.ceil(edges[s + 1])) - 1, int(np.ceil(edges[s])))
        if train:
            out.append(int(torch.randint(lo, hi + 1, (1,), generator=generator)))
        else:
            out.append((lo + hi) // 2)
    return out


def clip4clip(n_frames: int, fps: float, k: int = 12) -> list[int]:
    """CLIP4Clip's frames (``--feature_framerate 1 --slice_framepos 2 --max_frames k``).

    The rate is read as a whole number (OpenCV's rate cast to int: 29.97 -> 29) and the frame
    at the start of every second is kept while the video lasts: positions ``0, r, 2r, ...`` below
    ``n_frames``. More than ``k`` of those: ``k`` evenly spaced (floor); else all of them, so a
    video of ``s < k`` seconds gives ``s`` frames.
    """
    _check(n_frames, k, fps)
    per_second = list(range(0, n_frames, int(fps)))  # (L,) the frame at each second's start
    if len(per_second) <= k:
        return per_second
    return [per_second[i] for i in _spread(len(per_second), k)]


def xpool(n_frames: int, k: int = 12) -> list[int]:
    """X-Pool's ``'uniform'`` frames: the video cut into ``m = min(k, n_frames)`` segments at
    ``floor(n_frames * s / m)``, ``s = 0..m``; segment ``s`` spans ``[a, b]`` with
    ``b`` = the next edge minus one, and gives ``(a + b) // 2``. ``m`` positions (all the
    frames, in order, when the video is shorter than ``k``)."""
    _check(n_frames, k)
    m = min(k, n_frames)
    edges = np.linspace(0, n_frames, num=m + 1).astype(int)  # (m + 1,) floor of the cut points
    return [int((edges[s] + edges[s + 1] - 1) // 2) for s in range(m)]


def tempme(n_frames: int, fps: float, k: int = 12) -> list[int]:
    """TempMe's frames (``--video_framerate 1 --max_frames k``).

    The stride is the rate rounded to the nearest whole number (Python's ``round``: 29.97 ->
    30, 2.5 -> 2) and every stride-th frame from the first is kept: ``L`` positions. More than
    ``k``: ``k`` evenly spaced among them (floor); exactly ``k``: all; fewer: ``k`` evenly
    spaced over the whole video, ``linspace(0, n_frames - 1, k)`` floored, so a short video
    still gives ``k`` positions (some repeated when it has fewer than ``k`` frames).
    """
    _check(n_frames, k, fps)
    per_second = list(range(0, n_frames, round(float(fps))))  # (L,) one frame a second
    if len(per_second) > k:
        return [per_second[i] for i in _spread(len(per_second), k)]
    if len(per_second) == k:
        return per_second
    return _spread(n_frames, k)


def indices(rule: str, n_frames: int, fps: float, k: int, train: bool = False,
            generator: torch.Generator | None = None) -> list[int]:
    """The ``k`` frame positions of a video of ``n_frames`` frames at ``fps`` under ``rule``
    (one of :data:`RULES`): the rule's own positions, the last repeated up to ``k``."""
    if rule == "segments":
        return segment_indices(n_frames, k, train, generator)
    if rule == "clip4clip":
        out = clip4clip(n_frames, fps, k)
    elif rule == "xpool":
        out = xpool(n_frames, k)
    elif rule == "tempme":
        out = tempme(n_frames, fps, k)
    else:
        raise ValueError(f"unknown frame rule {rule!r}; choose one of {', '.join(RULES)}")
    return out + [out[-1]] * (k - len(out))
