"""Each method's frames (clipadapt.data.frames) against the official dataloaders' rules, on a few
(frame count, frame rate) cases, in training and at test; the recipes name each method's rule
(paper: the official loader's; tiny and colab: clipadapt's own segments), and the data path
applies it (the raw frames augmented in training, as the official loaders do).

The ``official_*`` functions below restate each official loader's steps in our words, loop for
loop, with the official file and lines beside them; clipadapt.data.frames computes the same
positions its own way.
"""

import numpy as np
import pytest
import torch

from clipadapt import profiles
from clipadapt.core import pixels, seeds
from clipadapt.data import augment, frames, video
from clipadapt.tasks.retrieval import RetrievalTask
from clipadapt.training import recipes


# -- the official rules, step by step -------------------------------------------------------------
def official_clip4clip(n_frames: int, fps: float, max_frames: int = 12) -> list[int]:
    """ArrowLuo/CLIP4Clip with --feature_framerate 1 --slice_framepos 2 (README.md:106-109)."""
    rate = int(fps)  # rawvideo_util.py:34: OpenCV's rate as an int
    seconds = (n_frames + rate - 1) // rate  # :36, the duration rounded up
    offsets = list(np.arange(0, rate, rate // 1))[:1]  # :43-52: one offset a second, 0
    read = []
    for sec in np.arange(0, seconds + 1):  # :57-65: read until a read fails (past the last frame)
        done = False
        for off in offsets:
            pos = int(sec * rate) + int(off)
            if pos >= n_frames:
                done = True
                break
            read.append(pos)
        if done:
            break
    if max_frames < len(read):  # dataloader_msrvtt_retrieval.py:104-113 (test), 266-275 (training)
        pick = np.linspace(0, len(read) - 1, num=max_frames, dtype=int)
        return [read[i] for i in pick]
    return read  # fewer: kept, the rest of the 12 blank and masked (:117-127)


def official_xpool(n_frames: int, num_frames: int = 12) -> list[int]:
    """layer6ai-labs/xpool datasets/video_capture.py:23-38 with sample='uniform' (all_config.py:20),
    then :60-61, the last frame repeated up to num_frames."""
    acc = min(num_frames, n_frames)
    intervals = np.linspace(start=0, stop=n_frames, num=acc + 1).astype(int)
    ranges = [(intervals[i], intervals[i + 1] - 1) for i in range(len(intervals) - 1)]
    picked = [int((a + b) // 2) for a, b in ranges]
    while len(picked) < num_frames:
        picked.append(picked[-1])
    return picked


def official_tempme(n_frames: int, fps: float, max_frames: int = 12) -> list[int]:
    """LunarShen/TempMe tvr/dataloaders/dataloader_retrieval.py:258-278 (no start and end time)."""
    f_start, f_end = 0, int(min(1000000000, n_frames - 1))
    sample_fps = 1  # :264, video_framerate 1 (main.py:56)
    stride = round(float(fps) / sample_fps)  # :265
    all_pos = list(range(f_start, f_end + 1, stride))
    if len(all_pos) > max_frames:
        return [all_pos[i] for i in np.linspace(0, len(all_pos) - 1, num=max_frames, dtype=int)]
    if len(all_pos) == max_frames:
        return all_pos
    return [int(i) for i in np.linspace(f_start, f_end, num=max_frames, dtype=int)]


# (frame count, frames per second): MSR-VTT-like clips of 10-30 s at 29.97, 30 and 25 fps, one
# at exactly 12 s, short and very short videos, a long one, and rates that round differently
CASES = [(300, 30.0), (301, 29.97), (450, 29.97), (360, 30.0), (359, 30.0), (899, 29.97), (96, 24.0),
         (12, 25.0), (7, 30.0), (1, 25.0), (5000, 25.0), (40, 2.5), (40, 3.5), (331, 15.0)]


@pytest.mark.parametrize("n,fps", CASES)
@pytest.mark.parametrize("k", [12, 64])
def test_each_rule_gives_its_official_loaders_frames(n, fps, k):
    assert frames.clip4clip(n, fps, k) == official_clip4clip(n, fps, k)
    assert frames.xpool(n, k) == official_xpool(n, k)[: min(n, k)]
    assert frames.tempme(n, fps, k) == official_tempme(n, fps, k)
    # training and test alike: no rule but ours draws anything
    for rule, official in (("clip4clip", official_clip4clip(n, fps, k)), ("xpool", official_xpool(n, k)),
                           ("tempme", official_tempme(n, fps, k))):
        for train in (False, True):
            got = frames.indices(rule, n, fps, k, train, torch.Generator().manual_seed(1))
            assert len(got) == k and got[: len(official)] == official
            assert got[len(official):] == [official[-1]] * (k - len(official))  # CLIP4Clip's masked rest


def test_a_few_positions_written_out():
    # 15 s at 29.97 fps: CLIP4Clip steps by 29 (the rate cast down), TempMe by 30 (rounded)
    assert frames.clip4clip(450, 29.97) == [0, 29, 58, 116, 145, 174, 232, 261, 290, 348, 377, 435]
    assert frames.tempme(450, 29.97) == [0, 30, 60, 90, 150, 180, 210, 240, 300, 330, 360, 420]
    # 10 s at 30 fps: CLIP4Clip keeps its 10 frames; TempMe spreads 12 over every frame
    assert frames.clip4clip(300, 30.0) == [30 * s for s in range(10)]
    assert frames.tempme(300, 30.0) == [0, 27, 54, 81, 108, 135, 163, 190, 217, 244, 271, 299]
    # X-Pool: the middle of each of 12 segments, edges floored
    assert frames.xpool(100) == [3, 11, 20, 28, 36, 45, 53, 61, 70, 78, 86, 95]
    assert frames.indices("xpool", 5, 30.0, 8) == [0, 1, 2, 3, 4, 4, 4, 4]


def test_ours_draws_in_training_and_bad_input_is_refused():
    g = lambda: torch.Generator().manual_seed(0)
    assert frames.indices("segments", 120, 30.0, 12, True, g()) == video.segment_indices(120, 12, True, g())
    assert frames.indices("segments", 120, 30.0, 12) == [4 + 10 * s for s in range(12)]
    assert video.tempme_indices(300, 30.0, 12) == frames.tempme(300, 30.0)  # the name chapter 3 calls
    with pytest.raises(ValueError, match="unknown frame rule 'uniform'"):
        frames.indices("uniform", 10, 30.0, 12)
    with pytest.raises(ValueError, match="fps=0.5"):
        frames.tempme(10, 0.5)
    with pytest.raises(ValueError, match="n_frames=0"):
        frames.xpool(0)


# -- the recipes name the rules ------------------------------------------------------------------
PAPER = {("mean pooling", "none"): "clip4clip", ("mean pooling", "full"): "clip4clip",
         ("mean pooling", "partial"): "xpool", ("mean pooling", "lora"): "tempme",
         ("VoP", "vop"): "xpool", ("VoP", "C"): "xpool", ("TempMe", "lora"): "tempme", ("TempMe", "full"): "clip4clip"}


@pytest.mark.parametrize("method,variant", list(PAPER))
def test_paper_samples_as_the_official_loader_and_tiny_and_colab_as_before(method, variant):
    official = recipes.official(method, variant)
    assert official.options["frames"] == PAPER[method, variant]
    assert recipes.get(method, profiles.get("paper"), variant).options["frames"] == PAPER[method, variant]
    for name in ("tiny", "colab", "colab-smoke"):
        row = recipes.get(method, profiles.get(name), variant)
        assert row.options["frames"] == "segments" and "own frame sampling" in row.sources["options.frames"]
    source = official.sources["options.frames"]
    repo = {"clip4clip": "ArrowLuo/CLIP4Clip", "xpool": "layer6ai-labs/xpool", "tempme": "LunarShen/TempMe"}
    assert repo[PAPER[method, variant]] in source


# -- the data path ----------------------------------------------------------------------------------
def textured(t, h, w):
    g = torch.Generator().manual_seed(t)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    out = torch.stack([torch.stack([ys, xs, torch.full_like(ys, i / t)], -1) for i in range(t)])
    return ((out + 0.05 * torch.rand(out.shape, generator=g)).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


@pytest.fixture
def clip(tmp_path):
    """A 40-frame 48 x 64 video at 8 fps (5 s), read at 32 px."""
    path = video.write_mp4(tmp_path / "v.mp4", textured(40, 48, 64), fps=8)
    return path


@pytest.mark.parametrize("rule", ["clip4clip", "xpool", "tempme"])
def test_a_dataset_under_an_official_rule_reads_its_frames_raw(clip, rule):
    n, fps = video.probe(clip)
    want = frames.indices(rule, n, fps, 4)
    raw = video.read_frames(clip, want)  # (4, 48, 64, 3) as decoded
    test = video.VideoTextDataset([(clip, "c")], frames=4, image_size=32).with_rule(rule)
    assert test.rule_frames(clip).shape == (4, 48, 64, 3)  # cached uncropped
    assert torch.equal(test.video(0), pixels.normalize_uint8(video.crop_frames(raw, 32)))
    train = video.VideoTextDataset([(clip, "c")], frames=4, image_size=32, train=True, rule=rule)
    assert torch.equal(train.video(0, torch.Generator().manual_seed(5)), test.video(0))  # fixed frames
    g = torch.Generator().manual_seed(3)
    crop = train.video(0, augment=("crop-flip-video", g))  # X-Pool's crop of the raw frames
    again = video.augment_raw("crop-flip-video", raw, 32, torch.Generator().manual_seed(3))
    assert crop.shape == (4, 3, 32, 32) and torch.equal(crop, again)
    assert not torch.equal(crop, test.video(0))
    assert torch.equal(train.video(0, augment=("none", g)), test.video(0))  # CLIP4Clip: no augmentation
    with pytest.raises(ValueError, match="only an official frame rule"):
        video.VideoTextDataset([(clip, "c")], frames=4, image_size=32).video(0, augment=("none", g))


def test_the_crop_is_drawn_on_the_raw_frame_and_timm_runs_before_the_centre_crop():
    raw = torch.from_numpy(textured(3, 48, 96))  # (3, 48, 96, 3): wide frames
    g = lambda: torch.Generator().manual_seed(0)
    _, _, ch, cw = augment.crop_params(48, 96, (0.5, 1.0), (3 / 4, 4 / 3), g())
    assert ch * cw >= 0.5 * 48 * 96 * 0.99  # half the raw frame at least, not of its centre square
    x = video.augment_raw("crop-flip-video", raw, 32, g())
    assert x.shape == (3, 3, 32, 32)
    tm = video.augment_raw("timm:rand-m7-n4-mstd0.5-inc1", raw, 32, g())
    assert tm.shape == (3, 3, 32, 32)
    assert torch.equal(tm, video.augment_raw("timm:rand-m7-n4-mstd0.5-inc1", raw, 32, g()))
    with pytest.raises(ValueError, match="no official loader applies 'crop-flip'"):
        video.augment_raw("crop-flip", raw, 32, g())


class _Recipe:
    augment, batch_size = "crop-flip-video", 2


def test_the_task_hands_the_augmentation_to_a_dataset_under_an_official_rule(clip):
    train = video.VideoTextDataset([(clip, "a"), (clip, "b")], frames=4, image_size=32, train=True, rule="xpool")
    test = video.VideoTextDataset([(clip, "a")], frames=4, image_size=32)
    task = RetrievalTask(train, test, tokenizer=None)
    loader = task.loader(None, _Recipe(), seed=0, device="cpu")
    videos, _ = loader.load(torch.tensor([0, 1]), step=3)
    for j, i in enumerate((0, 1)):
        g = seeds.generator(0, "augment", "3", str(i))
        assert torch.equal(videos[j], train.video(i, augment=("crop-flip-video", g)))


@pytest.mark.parametrize("profile", ["paper", "colab", "tiny"])
def test_the_workbench_builds_each_methods_task_with_its_recipes_rule(clip, profile, monkeypatch):
    from clipadapt import experiments
    prof = profiles.get(profile)
    bench = experiments.Workbench(prof, None, None, None)
    shared = video.VideoTextDataset([(clip, "a")], frames=4, image_size=32)
    monkeypatch.setattr(bench, "videos", lambda: {"train": shared, "test": shared, "partners": None, "twins": None,
                                                  "max_tokens": None})
    for (method, variant), rule in PAPER.items():
        task = bench.task(experiments.default(method, variant).under(prof), 0)
        want = rule if profile == "paper" else "segments"
        assert task.train.rule == task.test.rule == want, (method, variant, profile)
    assert shared.rule == "segments"  # each task reads a view; the shared sets stay as they were
