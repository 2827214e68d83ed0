"""Video files: writing mp4 (imageio-ffmpeg), reading frames (decord), choosing frames.

Which frames a video gives is its dataset's rule (:mod:`clipadapt.data.frames`, named by the
recipe): clipadapt's own (:func:`~clipadapt.data.frames.segment_indices`: one frame from each
of ``k`` equal segments, a random one in training and the middle one at test time), or the
rule of a method's official dataloader. A video shorter than ``k`` frames repeats its last frame.
Unreadable or truncated files raise :class:`VideoError` with the file's name.

:class:`VideoTextDataset` pairs videos with captions for retrieval. It keeps each decoded
video as uint8 frames already cropped to the model's input size, in a least-recently-used
cache under a byte budget (:class:`FrameCache`), and turns into floats only the frames
that a batch samples. At 224 px a cached frame takes 224 * 224 * 3 = 150,528 bytes
(147 KiB) as uint8, against 602,112 bytes (588 KiB) as float32: four times less. Under an
official rule (the paper profile) it keeps instead the rule's ``k`` frames of each video as
decoded, uncropped, since those loaders crop and augment the raw frames in training.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Hashable
from pathlib import Path

import decord
import imageio_ffmpeg
import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..core.files import atomic_path
from ..core.pixels import normalize, normalize_uint8
from . import augment as aug
from . import frames as rules
from .frames import segment_indices
from .frames import tempme as tempme_indices  # noqa: F401  (chapter 3 shows TempMe's rule by this name)


class VideoError(OSError):
    """A video that cannot be decoded."""


def write_mp4(path: str | Path, frames: np.ndarray | torch.Tensor, fps: int = 8, quality: int = 8) -> Path:
    """Write ``frames`` ``(T, H, W, 3)`` uint8 (or floats in [0, 1]) as an H.264 mp4,
    atomically: a temporary file in the same folder replaces ``path`` when complete."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be (T, H, W, 3) with T >= 1, got {frames.shape}")
    if frames.dtype != np.uint8:
        frames = (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        raise ValueError(f"H.264 needs even frame sides, got {w}x{h}")
    path = Path(path)
    with atomic_path(path, suffix=".mp4") as tmp:  # ffmpeg picks the container from the suffix
        writer = imageio_ffmpeg.write_frames(str(tmp), (w, h), fps=fps, quality=quality, macro_block_size=1,
                                             ffmpeg_log_level="error")
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
    return path


def probe(path: str | Path) -> tuple[int, float]:
    """``(number of frames, frames per second)`` of a video file."""
    vr = _open(path)
    return len(vr), float(vr.get_avg_fps())


def _open(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video {path} does not exist")
    try:
        vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except Exception as err:  # decord raises its own DECORDError and RuntimeError
        raise VideoError(f"cannot decode video {path}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from err
    if len(vr) == 0:
        raise VideoError(f"video {path} has no frames")
    return vr


def read_frames(path: str | Path, indices: list[int] | None = None) -> torch.Tensor:
    """Frames of a video as uint8 ``(T, H, W, 3)``; ``indices`` picks frames (all by default)."""
    vr = _open(path)
    n = len(vr)
    indices = list(range(n)) if indices is None else [int(i) for i in indices]
    bad = [i for i in indices if not 0 <= i < n]
    if bad:
        raise VideoError(f"video {path} has {n} frames; asked for frames {bad[:5]}")
    try:
        frames = vr.get_batch(indices).asnumpy()
    except Exception as err:
        raise VideoError(f"cannot decode frames {indices[:5]}... of video {path}: {str(err).splitlines()[0]}") from err
    if frames.ndim != 4 or frames.shape[-1] != 3:
        # seen with decord 0.6 on some small frame sizes (16, 24 and 48 pixels wide)
        raise VideoError(f"decord decoded video {path} into frames of shape {frames.shape[1:]}, not (H, W, 3); "
                         f"re-encode it at another size (32, 64 and 224 pixels work)")
    return torch.from_numpy(frames)


# -- frames for CLIP -----------------------------------------------------------------------------
def _resize_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Float frames ``(T, 3, H, W)`` in [0, 1] -> ``(T, 3, size, size)``: the shorter side
    resized to ``size`` (bicubic, clipped back to [0, 1]), then the centre cropped. Frames
    already ``size`` x ``size`` come back untouched."""
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = torch.nn.functional.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False).clamp(0, 1)
    top, left = (nh - size) // 2, (nw - size) // 2
    return x[:, :, top:top + size, left:left + size]


def preprocess_frames(frames: torch.Tensor, size: int) -> torch.Tensor:
    """CLIP's preprocessing of uint8 frames ``(T, H, W, 3)``, in float all the way: resize
    the shorter side to ``size`` (bicubic), crop the centre, scale to [0, 1] and normalise
    -> ``(T, 3, size, size)``. (:class:`VideoTextDataset` does the same in two steps,
    :func:`crop_frames` then :func:`~clipadapt.core.pixels.normalize_uint8`.)"""
    return normalize(_resize_crop(frames.permute(0, 3, 1, 2).float() / 255.0, size))


def crop_frames(frames: torch.Tensor, size: int, chunk: int = 64) -> torch.Tensor:
    """The geometric half of :func:`preprocess_frames`, kept in uint8: frames
    ``(T, H, W, 3)`` -> ``(T, size, size, 3)``, resized and centre-cropped.

    Frames already ``size`` x ``size`` are returned as they are, so normalising them later
    gives exactly :func:`preprocess_frames`'s numbers. Otherwise the resized frames are
    rounded to whole grey levels, which moves each value by at most half a level (1/510)
    before normalisation. ``chunk`` frames at a time go through float, which bounds the
    memory a long video needs while it is resized.
    """
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames of shape (T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    if tuple(frames.shape[1:3]) == (size, size):
        return frames.contiguous()
    out = torch.empty((len(frames), size, size, 3), dtype=torch.uint8)  # (T, size, size, 3)
    for start in range(0, len(frames), chunk):
        x = frames[start:start + chunk].permute(0, 3, 1, 2).float() / 255.0  # (c, 3, H, W) in [0, 1]
        x = _resize_crop(x, size)  # (c, 3, size, size), clipped to [0, 1]
        out[start:start + chunk] = (x * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1)
    return out


def augment_raw(name: str, frames: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """Augmentation ``name`` of a video's frames as decoded, uint8 ``(T, H, W, 3)``, as the
    official video loaders apply it to the raw frames; CLIP-normalised ``(T, 3, size, size)``
    out, one draw for all the frames:

    * ``"none"`` -- resized and centre-cropped (CLIP4Clip's only transform,
      ``dataloaders/rawvideo_util.py:16-23``);
    * ``"crop-flip-video"`` -- X-Pool's ``RandomResizedCrop(size, scale=(0.5, 1))`` and
      ``RandomHorizontalFlip`` on the tensor of raw frames (one crop and one coin for all of
      them; torchvision's default bilinear resize, without antialiasing as torchvision 0.9
      did): ``layer6ai-labs/xpool datasets/model_transforms.py:11-16``, applied to the whole
      ``(T, C, H, W)`` video at ``datasets/msrvtt_dataset.py:51-57``;
    * ``"timm:<config>"`` -- timm's RandAugment on the raw frames with the translate
      constant of ``size`` (TempMe's ``create_random_augment(input_size=(224, 224))``), then
      resized and centre-cropped: ``LunarShen/TempMe tvr/dataloaders/dataloader_retrieval.py:280-290``.
    """
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    if name == "none":
        return normalize_uint8(crop_frames(frames, size))
    if name.startswith(aug.TIMM):
        return normalize_uint8(crop_frames(aug.timm_frames(frames, g, name[len(aug.TIMM):], size), size))
    if name == "crop-flip-video":
        x = frames.permute(0, 3, 1, 2).float() / 255.0  # (T, 3, H, W) in [0, 1]
        top, left, ch, cw = aug.crop_params(*x.shape[-2:], (0.5, 1.0), (3 / 4, 4 / 3), g)
        x = TF.resized_crop(x, top, left, ch, cw, [size, size], interpolation=InterpolationMode.BILINEAR,
                            antialias=False)  # (T, 3, size, size)
        x = TF.horizontal_flip(x) if torch.rand(1, generator=g).item() < 0.5 else x
        return normalize(x)
    raise ValueError(f"no official loader applies {name!r} to raw frames; choose none, crop-flip-video or "
                     f"{aug.TIMM}<config>")


# -- the video-caption dataset ---------------------------------------------------------------------
DEFAULT_CACHE_BUDGET = 2 * 2**30  # bytes: 2 GiB, about 14,000 uint8 frames at 224 px


def _nbytes(frames: torch.Tensor) -> int:
    """The memory a cached tensor keeps alive: its whole storage (a view keeps all of it)."""
    return frames.untyped_storage().nbytes()


class FrameCache:
    """Decoded videos by key (the file; with the frame rule and count, a rule's frames), under a
    byte budget, least recently used evicted first.

    :meth:`get` returns a cached video (and marks it recently used) or None; :meth:`put`
    adds one, first evicting the least recently used until it fits. A single video larger
    than the whole budget is not kept (it is decoded at every use); a budget of 0 turns the
    cache off. :attr:`nbytes` never exceeds :attr:`budget`.
    """

    def __init__(self, budget: int):
        if budget < 0:
            raise ValueError(f"the frame cache's budget must be >= 0 bytes, got {budget}")
        self.budget = int(budget)
        self.nbytes = 0
        self._videos: OrderedDict[Hashable, torch.Tensor] = OrderedDict()  # least recently used first

    def __len__(self) -> int:
        return len(self._videos)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._videos

    def get(self, key: Hashable) -> torch.Tensor | None:
        frames = self._videos.get(key)
        if frames is not None:
            self._videos.move_to_end(key)
        return frames

    def put(self, key: Hashable, frames: torch.Tensor) -> None:
        self.discard(key)
        size = _nbytes(frames)
        if size > self.budget:
            return
        while self.nbytes + size > self.budget:
            self.discard(next(iter(self._videos)))
        self._videos[key] = frames
        self.nbytes += size

    def discard(self, key: Hashable) -> None:
        frames = self._videos.pop(key, None)
        if frames is not None:
            self.nbytes -= _nbytes(frames)


class VideoTextDataset:
    """Pairs of a video file and a caption. Each access samples ``frames`` frames of a
    video by ``rule`` (:mod:`clipadapt.data.frames`; ``"segments"``, the default: random per
    segment in training, the middle at test) and returns them normalised for CLIP,
    ``(frames, 3, image_size, image_size)``. :meth:`with_rule` gives the same pairs under
    another rule, sharing the cache.

    Under an official rule (any but ``"segments"``) a video's frames are fixed, and
    :meth:`video` decodes just them, at the file's size, and caches them so; at test they
    are resized and centre-cropped, in training the augmentation the loader is given works
    on those raw frames, as the official loaders do (:func:`augment_raw`).

    Memory: a video is decoded, resized and centre-cropped to ``image_size`` once, and its
    frames are cached as uint8 ``(T, size, size, 3)`` in a :class:`FrameCache` of
    ``cache_budget`` bytes; a video evicted from it is decoded again when next needed. Only
    the sampled frames of a batch are made float. :attr:`cache_bytes` is what the cache
    holds now. With frames already ``image_size`` square nothing is resized and the frames
    are bit for bit those of :func:`preprocess_frames`; with a resize they differ by at
    most half a grey level before normalisation (see :func:`crop_frames`).

    :meth:`batch` skips a video that cannot be decoded, reports it with its file name, and
    keeps the rest of the batch.

    ``seconds`` (optional) reads only the start of each video: DiDeMo's annotators saw the
    first 30 seconds, and CLIP4Clip samples frames from the first 31.

    Several pairs may share a video (MSVD's test set: every caption of a video is a pair):
    :attr:`captions_per_video` says how many at most, and :meth:`video_groups` lists each
    video once with the video of every pair, so that an evaluation encodes a video once.
    """

    def __init__(self, records: list[tuple[str | Path, str]], frames: int = 12, image_size: int = 224,
                 train: bool = False, cache_budget: int = DEFAULT_CACHE_BUDGET, seconds: float | None = None,
                 rule: str = rules.DEFAULT):
        if not records:
            raise ValueError("a VideoTextDataset needs at least one (video, caption) pair")
        if seconds is not None and seconds <= 0:
            raise ValueError(f"seconds must be positive (or None for whole videos), got {seconds}")
        if rule not in rules.RULES:
            raise ValueError(f"unknown frame rule {rule!r}; choose one of {', '.join(rules.RULES)}")
        self.records = [(Path(v), c) for v, c in records]
        self.frames, self.image_size, self.train = frames, image_size, train
        self.seconds = seconds  # only the first `seconds` of each video are read (DiDeMo: 31, as CLIP4Clip)
        self.rule = rule
        self._cache = FrameCache(cache_budget)
        self._probed: dict[Path, tuple[int, float]] = {}  # file -> (frames, fps), shared with with_rule's views

    def with_rule(self, rule: str) -> VideoTextDataset:
        """These pairs under frame rule ``rule``, sharing this dataset's cache (keyed by rule)."""
        if rule not in rules.RULES:
            raise ValueError(f"unknown frame rule {rule!r}; choose one of {', '.join(rules.RULES)}")
        if rule == self.rule:
            return self
        other = copy.copy(self)
        other.rule = rule
        return other

    @property
    def from_raw(self) -> bool:  # an official rule: training augments the raw frames in :meth:`video`
        return self.rule != "segments"

    def __len__(self) -> int:
        return len(self.records)

    @property
    def captions_per_video(self) -> int:
        """The most pairs that share one video file (1: every pair has a video of its own)."""
        counts: dict[Path, int] = {}
        for v, _ in self.records:
            counts[v] = counts.get(v, 0) + 1
        return max(counts.values())

    def video_groups(self) -> tuple[list[int], list[int]]:
        """``(first, video_of)``: the index of each distinct video's first pair, in order of
        appearance, and for every pair the position of its video in that list."""
        position: dict[Path, int] = {}
        first, video_of = [], []
        for i, (v, _) in enumerate(self.records):
            if v not in position:
                position[v] = len(first)
                first.append(i)
            video_of.append(position[v])
        return first, video_of

    @property
    def cache_budget(self) -> int:
        """The most bytes of frames the cache may hold."""
        return self._cache.budget

    @property
    def cache_bytes(self) -> int:
        """The bytes of frames the cache holds now (at most :attr:`cache_budget`)."""
        return self._cache.nbytes

    def _readable(self, path: Path) -> tuple[int, float]:
        """``(frames read, fps)`` of ``path``: those starting within :attr:`seconds` where set, else all."""
        if path not in self._probed:
            self._probed[path] = probe(path)
        total, fps = self._probed[path]
        if self.seconds is None:
            return total, fps
        return min(total, max(1, int(np.ceil(self.seconds * fps)))), fps

    def rule_frames(self, path: Path) -> torch.Tensor:
        """The :attr:`frames` frames that :attr:`rule` picks from video ``path``, as decoded,
        uint8 ``(F, H, W, 3)``: from the cache, or decoded (then cached)."""
        key = (path, self.rule, self.frames)
        frames = self._cache.get(key)
        if frames is None:
            n, fps = self._readable(path)
            frames = read_frames(path, rules.indices(self.rule, n, fps, self.frames))  # (F, H, W, 3) uint8
            self._cache.put(key, frames)
        return frames

    def cropped_frames(self, path: Path) -> torch.Tensor:
        """Every frame of video ``path``, resized and cropped, uint8 ``(T, size, size, 3)``:
        from the cache, or decoded (then cached)."""
        frames = self._cache.get(path)
        if frames is None:
            indices = None
            if self.seconds is not None:  # the frames that start within the first `seconds`
                indices = list(range(self._readable(path)[0]))
            frames = crop_frames(read_frames(path, indices), self.image_size)  # (T, size, size, 3) uint8
            self._cache.put(path, frames)
        return frames

    def video(self, i: int, generator: torch.Generator | None = None,
              augment: tuple[str, torch.Generator] | None = None) -> torch.Tensor:
        """``frames`` preprocessed frames of pair ``i``, ``(F, 3, size, size)``. ``augment``
        (an official rule in training): the augmentation's name and its generator, applied
        to the raw frames (:func:`augment_raw`)."""
        if self.from_raw:
            raw = self.rule_frames(self.records[i][0])  # (F, H, W, 3) uint8, as decoded
            if augment is not None and self.train:
                return augment_raw(augment[0], raw, self.image_size, augment[1])
            return normalize_uint8(crop_frames(raw, self.image_size))  # (F, 3, size, size)
        if augment is not None:
            raise ValueError("only an official frame rule augments inside the dataset; "
                             f"rule {self.rule!r} leaves augmentation to the task")
        all_frames = self.cropped_frames(self.records[i][0])  # (T, size, size, 3) uint8
        idx = segment_indices(len(all_frames), self.frames, self.train, generator)
        return normalize_uint8(all_frames[idx])  # (F, 3, size, size) float, made for this access only

    def batch(self, indices, generator: torch.Generator | None = None,
              augment: tuple[str, torch.Generator] | None = None):
        """``(videos (B, F, 3, H, W), captions, failures)`` where ``failures`` lists
        ``(file, error)`` for videos that could not be decoded (left out of the batch);
        ``augment``: as :meth:`video`'s."""
        videos, captions, failures = [], [], []
        for i in indices:
            path, caption = self.records[int(i)]
            try:
                videos.append(self.video(int(i), generator, augment))
            except VideoError as err:
                failures.append((str(path), str(err)))
                continue
            captions.append(caption)
        if not videos:
            raise VideoError(f"no video of the batch could be decoded: {failures[:3]}")
        return torch.stack(videos), captions, failures
