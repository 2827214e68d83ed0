import pytest
import torch

from clipadapt.data import worlds


def test_deterministic_from_seed():
    w = worlds.ImageWorld(64, p_two_objects=0.5)
    a = w.batch(16, worlds.generator(3, "train"))
    b = w.batch(16, worlds.generator(3, "train"))
    c = w.batch(16, worlds.generator(4, "train"))
    assert torch.equal(a["images"], b["images"]) and a["captions"].texts == b["captions"].texts
    assert not torch.equal(a["images"], c["images"])
    assert worlds.generator(0, "test").initial_seed() != worlds.generator(0, "train").initial_seed()


def test_images_shape_range_and_colour():
    w = worlds.ImageWorld(64)
    s = w.sample(30, worlds.generator(0), shape=0, colour=worlds.COLOURS.index("red"), size=1, position=4)
    img = w.render(s)
    assert img.shape == (30, 3, 64, 64) and img.min() >= 0 and img.max() <= 1
    centre = img[:, :, 28:36, 28:36].mean((2, 3))  # a large circle in the centre covers this
    assert (centre[:, 0] > 0.7).all() and (centre[:, 1] < 0.35).all()


def test_shapes_differ_in_area():
    w = worlds.ImageWorld(64, noise=0.0)
    areas = []
    for s in range(len(worlds.SHAPES)):
        sc = w.sample(4, worlds.generator(1), shape=s, size=1, position=4)
        sc.radius[:] = 0.2
        sc.centre[:] = 0.5
        sc.background[:] = 0.0
        areas.append(w.render(sc).amax(1).gt(0.05).float().sum((1, 2)))
    areas = torch.stack(areas)[:, 0]
    assert len(set(areas.round().tolist())) == len(worlds.SHAPES)


def test_two_objects_sit_apart_and_captions_name_both():
    w = worlds.ImageWorld(64, p_two_objects=1.0)
    s = w.sample(200, worlds.generator(0))
    assert (s.n_objects == 2).all()
    dist = (s.centre[:, 0] - s.centre[:, 1]).norm(dim=-1)
    assert (dist >= s.radius.sum(1) - 1e-6).all()
    caps = w.captions(s, worlds.generator(0), full=True)
    assert all(" and " in t for t in caps.texts)


def test_full_caption_text():
    w = worlds.ImageWorld(64)
    s = w.sample(1, worlds.generator(0), shape=0, colour=1, size=1, position=0)
    assert w.captions(s, worlds.generator(0), full=True).texts == ["a photo of a large orange circle on the left."]
    assert worlds.phrase(colour=1) == "an orange object"


def test_consistency_matrix():
    # scenes: red circle left; blue square right + red triangle left
    attrs = torch.tensor([[[0, 0, 0, 0], [-1, -1, -1, -1]], [[1, 4, 1, 1], [2, 0, 0, 0]]])
    mentions = torch.tensor([
        [[0, -1, -1, -1], [-2, -2, -2, -2]],  # "a circle"
        [[-1, 0, -1, -1], [-2, -2, -2, -2]],  # "a red object": true of both
        [[2, 0, -1, -1], [1, -1, -1, -1]],  # "a red triangle and a square"
        [[1, -1, -1, -1], [1, -1, -1, -1]],  # "a square and a square": needs two squares
    ])
    c = worlds.consistent(mentions, attrs)
    assert c.tolist() == [[True, False], [True, True], [False, True], [False, False]]


def test_training_captions_true_of_their_pictures():
    w = worlds.ImageWorld(64, p_two_objects=0.3)
    b = w.batch(256, worlds.generator(5))
    c = worlds.consistent(b["captions"].mentions, b["scenes"].attrs)
    assert c.diagonal().all()
    assert c.sum() > len(c)  # templated captions fit other pictures too


def test_bad_inputs():
    with pytest.raises(ValueError, match="image_size"):
        worlds.ImageWorld(8)
    with pytest.raises(ValueError, match="p_two_objects"):
        worlds.ImageWorld(64, p_two_objects=2)
    w = worlds.ImageWorld(64)
    with pytest.raises(ValueError, match="cannot fix 'texture'"):
        w.sample(2, worlds.generator(0), texture=1)
    with pytest.raises(ValueError, match="shape index out of range"):
        w.sample(2, worlds.generator(0), shape=9)
    with pytest.raises(ValueError, match="unknown attribute"):
        worlds.prompts_for("weight")


def test_prompts():
    p = worlds.prompts_for("position")
    assert len(p) == len(worlds.POSITIONS) and p[0][0] == "a photo of an object on the left."
