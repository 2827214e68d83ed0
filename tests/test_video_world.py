import torch

from clipadapt.data import video, worlds


def test_video_world_shapes_and_determinism():
    vw = worlds.VideoWorld(64, frames=6, p_appear=0.5)
    a = vw.render(vw.sample(5, worlds.generator(0, "v")))
    b = vw.render(vw.sample(5, worlds.generator(0, "v")))
    assert a.shape == (5, 6, 3, 64, 64) and torch.equal(a, b)


def test_moves_and_their_twins_hold_the_same_frames_in_reverse():
    vw = worlds.VideoWorld(64, frames=8, p_appear=0.0)
    vw.image.noise = 0.0  # compare pixels without the per-frame noise
    v = vw.sample(6, worlds.generator(1))
    twin = vw.reversed(v)
    x, y = vw.render(v), vw.render(twin)
    # same frames (up to pixel noise), opposite order; different captions
    assert (x - y.flip(1)).abs().max() < 1e-5
    assert (x - y).abs().mean() > 0.01
    caps, twin_caps = vw.captions(v), vw.captions(twin)
    for c, t in zip(caps, twin_caps):
        assert c != t and " moves from " in c
        a, b = c.split(" moves from ")[1].rstrip(".").split(" to ")
        assert t.endswith(f"moves from {b} to {a}.")


def test_appear_videos_show_the_second_object_from_half_way():
    vw = worlds.VideoWorld(64, frames=8, p_appear=1.0)
    v = vw.sample(3, worlds.generator(2))
    x = vw.render(v)
    caps = vw.captions(v)
    assert all(", then " in c for c in caps)
    first, second = caps[0].rstrip(".").split(" appears, then ")
    assert vw.captions(vw.reversed(v))[0] == f"{second} appears, then {first}."
    # more painted pixels in the second half than in the first
    bright = (x - x[:, :, :, :2, :2].mean((3, 4), keepdim=True)).abs().sum(2).gt(0.3).float().mean((2, 3))
    assert (bright[:, 4:].mean(1) > bright[:, :4].mean(1)).all()


def test_written_videos_decode_back(tmp_path):
    vw = worlds.VideoWorld(64, frames=6, p_appear=0.0)
    records = worlds.write_videos(vw, 2, worlds.generator(3), tmp_path)
    assert len(records) == 4 and {r["twin"] for r in records} == {r["video"] for r in records}
    frames = video.read_frames(tmp_path / records[0]["video"])
    assert frames.shape == (6, 64, 64, 3)
    again = vw.render(vw.sample(2, worlds.generator(3)))[0].permute(0, 2, 3, 1)
    assert (frames.float() / 255 - again).abs().mean() < 0.05  # H.264 is lossy, but close


def test_near_misses_differ_from_their_video_in_one_attribute_only():
    vw = worlds.VideoWorld(64, frames=4, p_appear=0.0)
    v = vw.sample(6, worlds.generator(4))
    both = vw.near_misses(v, worlds.generator(5), 3)
    assert len(both) == 24
    assert torch.equal(both.attrs[:6], v.attrs) and torch.equal(both.base.centre[:6], v.base.centre)
    for j, name in enumerate(("colour", "shape", "size")):
        miss = both.attrs[6 * (j + 1): 6 * (j + 2), 0, :3]
        changed = miss != v.attrs[:, 0, :3]
        assert changed[:, ("shape", "colour", "size").index(name)].all() and changed.sum(1).eq(1).all()
        assert torch.equal(both.start[6 * (j + 1): 6 * (j + 2)], v.start)
    caps = vw.captions(both)
    assert len(set(caps[:6]) & set(caps[6:])) <= 1  # different words (a rare collision of two draws aside)
    x = vw.render(both)
    assert (x[6:12] - x[:6]).abs().amax((1, 2, 3, 4)).gt(0.2).all()  # colour misses look different
    import pytest
    with pytest.raises(ValueError, match="0..10"):
        vw.near_misses(v, worlds.generator(5), -1)
    all_ten = vw.captions(vw.near_misses(v, worlds.generator(5), 10))
    for b in range(6):  # 11 different captions of each video: every other value used once
        assert len({all_ten[j * 6 + b] for j in range(11)}) == 11


def test_written_near_misses_come_with_their_twins(tmp_path):
    vw = worlds.VideoWorld(64, frames=4, p_appear=0.0)
    records = worlds.write_videos(vw, 2, worlds.generator(6), tmp_path, near_misses=2)
    assert len(records) == 12 and {r["twin"] for r in records} == {r["video"] for r in records}
    assert len({r["caption"] for r in records}) == 12
