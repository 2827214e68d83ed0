import numpy as np
import pytest
import torch

from clipadapt.core import pixels
from clipadapt.data import video, worlds


def coloured_frames(t=10, size=32):
    frames = np.zeros((t, size, size, 3), dtype=np.uint8)
    for i in range(t):
        frames[i, :, :, 0] = min(250, 12 * i)  # red rises frame by frame
        frames[i, :, :, 2] = 200
    return frames


def test_mp4_round_trip(tmp_path):
    path = video.write_mp4(tmp_path / "v.mp4", coloured_frames(), fps=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]  # no temporary file left
    n, fps = video.probe(path)
    assert (n, fps) == (10, 8.0)
    frames = video.read_frames(path)
    assert frames.shape == (10, 32, 32, 3) and frames.dtype == torch.uint8
    red = frames[..., 0].float().mean((1, 2))
    assert torch.allclose(red, torch.arange(10.0) * 12, atol=8)  # lossy, but the order of frames survives
    picked = video.read_frames(path, [9, 0])
    assert picked[0, ..., 0].float().mean() > picked[1, ..., 0].float().mean()


def test_float_frames_and_bad_shapes(tmp_path):
    video.write_mp4(tmp_path / "f.mp4", torch.rand(3, 16, 16, 3))
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        video.write_mp4(tmp_path / "x.mp4", np.zeros((3, 16, 16)))
    with pytest.raises(ValueError, match="even frame sides"):
        video.write_mp4(tmp_path / "y.mp4", np.zeros((3, 15, 16, 3), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.mp4"]


def test_unreadable_videos_name_the_file(tmp_path):
    with pytest.raises(video.VideoError, match="nothing.mp4 does not exist"):
        video.read_frames(tmp_path / "nothing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    with pytest.raises(video.VideoError, match="junk.mp4"):
        video.read_frames(junk)
    good = video.write_mp4(tmp_path / "good.mp4", coloured_frames(20))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 3])
    with pytest.raises(video.VideoError, match="cut.mp4"):
        video.read_frames(cut)
    with pytest.raises(video.VideoError, match="has 20 frames; asked for frames \\[25\\]"):
        video.read_frames(good, [0, 25])


def test_segment_sampling():
    mid = video.segment_indices(24, 12)
    assert mid == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]
    mid = video.segment_indices(120, 12)
    assert mid == [4 + 10 * s for s in range(12)]
    g = torch.Generator().manual_seed(0)
    train = video.segment_indices(120, 12, train=True, generator=g)
    assert all(10 * s <= i < 10 * (s + 1) for s, i in enumerate(train))
    assert train == video.segment_indices(120, 12, train=True, generator=torch.Generator().manual_seed(0))
    assert video.segment_indices(5, 8) == [0, 1, 2, 3, 4, 4, 4, 4]  # short: repeat the last frame
    with pytest.raises(ValueError):
        video.segment_indices(0, 12)


def test_decord_size_problem_is_reported_not_returned(tmp_path):
    path = video.write_mp4(tmp_path / "small.mp4", np.zeros((3, 16, 16, 3), np.uint8))
    with pytest.raises(video.VideoError, match="small.mp4"):
        video.read_frames(path)


def test_preprocess_frames_resizes_crops_and_normalises():
    frames = torch.zeros(2, 48, 80, 3, dtype=torch.uint8)
    frames[..., 0] = 255
    x = video.preprocess_frames(frames, 32)
    assert x.shape == (2, 3, 32, 32)
    red = pixels.normalize(torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1).expand(1, 3, 32, 32))
    assert torch.allclose(x[0], red[0], atol=1e-3)


def test_dataset_caches_and_survives_a_broken_video(tmp_path, monkeypatch):
    good = [video.write_mp4(tmp_path / f"v{i}.mp4", coloured_frames(12)) for i in range(2)]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(good[0].read_bytes()[:200])
    ds = video.VideoTextDataset([(good[0], "first"), (broken, "broken"), (good[1], "second")], frames=4,
                                image_size=32)
    calls = []
    real = video.read_frames
    monkeypatch.setattr(video, "read_frames", lambda p, *a: calls.append(p) or real(p, *a))
    videos, captions, failures = ds.batch([0, 1, 2])
    assert videos.shape == (2, 4, 3, 32, 32) and captions == ["first", "second"]
    assert len(failures) == 1 and "broken.mp4" in failures[0][0] + failures[0][1]
    ds.batch([0, 2])
    assert calls.count(good[0]) == 1  # decoded once, then cached
    assert torch.equal(ds.video(0), ds.video(0))  # test-time sampling is fixed
    with pytest.raises(video.VideoError, match="no video of the batch"):
        ds.batch([1])


def textured_frames(t=6, h=64, w=64, seed=0):
    """Smooth gradients plus a little noise: values that a bicubic resize moves off the grid."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    frames = torch.stack([torch.stack([ys, xs, (ys + xs + i / t) % 1], -1) for i in range(t)])  # (t, h, w, 3)
    frames = frames + 0.05 * torch.rand(frames.shape, generator=g)
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def test_dataset_frames_are_bit_identical_without_a_resize(tmp_path):
    # as the synthetic profiles do: the video world writes 64 px videos, read at image_size 64
    records = worlds.write_videos(worlds.VideoWorld(64, frames=8, p_appear=0.5), 2, worlds.generator(0, "px"),
                                  tmp_path)
    paths = [tmp_path / r["video"] for r in records]
    test = video.VideoTextDataset([(p, "c") for p in paths], frames=4, image_size=64)
    train = video.VideoTextDataset([(p, "c") for p in paths], frames=4, image_size=64, train=True)
    for i, path in enumerate(paths):
        reference = video.preprocess_frames(video.read_frames(path), 64)  # today's path: float at full size
        assert test.cropped_frames(path).dtype == torch.uint8
        assert torch.equal(test.video(i), reference[video.segment_indices(len(reference), 4)])
        g, h = torch.Generator().manual_seed(i), torch.Generator().manual_seed(i)
        picked = video.segment_indices(len(reference), 4, train=True, generator=h)
        assert torch.equal(train.video(i, g), reference[picked])
    videos, _, _ = test.batch([0, 1])
    assert videos.dtype == torch.float32 and videos.shape == (2, 4, 3, 64, 64)


def test_a_resize_moves_values_by_at_most_half_a_grey_level(tmp_path):
    path = video.write_mp4(tmp_path / "wide.mp4", textured_frames(6, 64, 96))
    ds = video.VideoTextDataset([(path, "wide")], frames=6, image_size=32)
    cached = ds.cropped_frames(path)
    assert cached.shape == (6, 32, 32, 3) and cached.dtype == torch.uint8
    assert ds.cache_bytes == 6 * 32 * 32 * 3  # a quarter of the float32 frames
    ours = ds.video(0)  # all 6 frames, in order
    reference = video.preprocess_frames(video.read_frames(path), 32)
    gap = ((ours - reference) * pixels.STD).abs()  # back in [0, 1] units, before normalisation
    assert 0 < gap.max() <= 0.5 / 255 + 1e-6


def test_frame_cache_evicts_the_least_recently_used():
    cache = video.FrameCache(300)
    blocks = {k: torch.zeros(100, dtype=torch.uint8) for k in "abcd"}
    for k in "abc":
        cache.put(k, blocks[k])
    assert cache.get("a") is blocks["a"]  # a is now the most recently used
    cache.put("d", blocks["d"])
    assert "b" not in cache and all(k in cache for k in "acd") and cache.nbytes == 300
    cache.put("big", torch.zeros(301, dtype=torch.uint8))  # larger than the budget: not kept, nothing evicted
    assert "big" not in cache and len(cache) == 3
    with pytest.raises(ValueError, match="budget must be >= 0 bytes, got -1"):
        video.FrameCache(-1)


def test_dataset_memory_stays_within_its_budget(tmp_path, monkeypatch):
    paths = [video.write_mp4(tmp_path / f"v{i:02d}.mp4", textured_frames(5, 32, 32, seed=i)) for i in range(12)]
    per_video = 5 * 32 * 32 * 3  # uint8 frames, already at image_size
    budget = 3 * per_video + per_video // 2  # room for three and a half videos
    ds = video.VideoTextDataset([(p, f"video {i}") for i, p in enumerate(paths)], frames=4, image_size=32,
                                cache_budget=budget)
    first = ds.video(0)
    calls = []
    real = video.read_frames
    monkeypatch.setattr(video, "read_frames", lambda p, *a: calls.append(p) or real(p, *a))
    for i in range(len(ds)):
        ds.batch([i])
        assert ds.cache_bytes <= budget
    videos, _, _ = ds.batch(range(len(ds)))  # a batch larger than the cache
    assert videos.shape == (12, 4, 3, 32, 32) and ds.cache_bytes == 3 * per_video <= ds.cache_budget
    assert torch.equal(ds.video(0), first)  # evicted long ago, decoded again: the same frames
    assert calls.count(paths[0]) == 2 and len(calls) == 11 + 12 + 1
