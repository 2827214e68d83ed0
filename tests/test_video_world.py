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
