import math

import pytest
import torch
import torch.nn.functional as F

from clipadapt.core import losses, metrics


def test_clip_loss_matches_the_formula():
    torch.manual_seed(0)
    a, b = torch.randn(6, 8), torch.randn(6, 8)
    scale = 10.0
    logits = scale * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).t()
    expected = 0
    for i in range(6):
        expected += -logits[i].log_softmax(0)[i] - logits[:, i].log_softmax(0)[i]
    expected = expected / 12
    assert torch.allclose(losses.clip_loss(a, b, scale), expected, atol=1e-5)
    eye = torch.eye(6, dtype=torch.bool)
    assert torch.allclose(losses.clip_loss(a, b, scale, eye), expected, atol=1e-5)


def test_true_captions_of_other_pictures_are_not_pushed_away():
    # two red circles, captioned "a circle" and "a red circle": both captions are true of
    # both pictures. The identity target pushes each picture away from the other's caption;
    # with both counted as positives, equal similarity is already the optimum.
    img = torch.tensor([[1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    txt = torch.tensor([[1.0, 0.1], [1.0, -0.1]])
    pos = torch.ones(2, 2, dtype=torch.bool)
    losses.clip_loss(img, txt, 10.0).backward()
    assert img.grad.abs().max() > 0.05
    img.grad = None
    multi = losses.clip_loss(img, txt, 10.0, pos)
    multi.backward()
    assert img.grad.abs().max() < 1e-6
    assert multi.item() == pytest.approx(math.log(2), abs=1e-4)  # the entropy of its targets


def test_bad_shapes():
    with pytest.raises(ValueError, match="same shape"):
        losses.clip_loss(torch.randn(3, 4), torch.randn(2, 4), 1.0)
    with pytest.raises(ValueError, match="rows \\[1\\]"):
        losses.clip_loss(torch.randn(2, 4), torch.randn(2, 4), 1.0, torch.tensor([[1, 0], [0, 0]], dtype=torch.bool))


def test_ranks_and_recall_by_hand():
    sim = torch.tensor([
        [0.9, 0.1, 0.2],  # right item first: rank 1
        [0.5, 0.4, 0.3],  # right item second: rank 2
        [0.7, 0.8, 0.6],  # right item last: rank 3
    ])
    assert metrics.ranks(sim).tolist() == [1, 2, 3]
    m = metrics.retrieval_metrics(sim, ks=(1, 2))
    assert m["R@1"] == pytest.approx(100 / 3) and m["R@2"] == pytest.approx(200 / 3)
    assert m["MdR"] == 2 and m["MnR"] == 2
    assert m["R-Sum"] == pytest.approx(100.0)  # R@1 + R@2 here
    full = metrics.retrieval_metrics(sim)
    assert full["R-Sum"] == pytest.approx(100 / 3 + 100 + 100)


def test_ties_count_against_the_query():
    sim = torch.ones(4, 4)
    assert metrics.ranks(sim).tolist() == [4, 4, 4, 4]
    sim = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    assert metrics.ranks(sim).tolist() == [2, 1]


def test_even_median_and_errors():
    sim = torch.eye(4) + torch.tensor([[0, 0, 0, 0], [2.0, 0, 0, 0], [2.0, 2.0, 0, 0], [2.0, 2.0, 2.0, 0]])
    assert metrics.ranks(sim).tolist() == [1, 2, 3, 4]
    assert metrics.retrieval_metrics(sim)["MdR"] == 2.5
    with pytest.raises(ValueError, match="square"):
        metrics.ranks(torch.ones(2, 3))
    with pytest.raises(ValueError, match="logits"):
        metrics.accuracy(torch.ones(3, 2), torch.zeros(2, dtype=torch.long))


def test_zero_shot_accuracy():
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    cls = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert metrics.zero_shot_accuracy(img, cls, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    both = metrics.image_text_retrieval(img[:2], cls)
    assert both["image_to_text"]["R@1"] == 100 and both["text_to_image"]["R@1"] == 100


def test_multi_caption_metrics_by_hand():
    # captions 0, 1 describe video 0; caption 2 video 1; caption 3 video 2
    sim = torch.tensor([[0.9, 0.1, 0.2],
                        [0.1, 0.5, 0.6],  # a poor caption of video 0: its video ranks third
                        [0.3, 0.8, 0.0],
                        [0.7, 0.2, 0.4]])  # video 2's only caption prefers video 0
    video_of = torch.tensor([0, 0, 1, 2])
    out = metrics.multi_caption_metrics(sim, video_of, ks=(1, 2))
    t2v = out["text_to_video"]  # ranks 1, 3, 1, 2
    assert t2v["R@1"] == 50.0 and t2v["R@2"] == 75.0 and t2v["MnR"] == 7 / 4 and t2v["MdR"] == 1.5
    # video 0: its best caption 0.9 beats sets 1 (0.3) and 2 (0.7): rank 1; video 1: own 0.8 vs set 0's best
    # 0.5: rank 1; video 2: own 0.4 vs set 0's best 0.6: rank 2 -- one good caption is enough
    v2t = out["video_to_text"]
    assert v2t["R@1"] == pytest.approx(200 / 3) and v2t["MnR"] == pytest.approx(4 / 3) and v2t["MdR"] == 1.0


def test_multi_caption_metrics_with_one_caption_each_are_the_square_ones():
    sim = torch.randn(7, 7, generator=torch.Generator().manual_seed(0))
    out = metrics.multi_caption_metrics(sim, torch.arange(7))
    assert out["text_to_video"] == metrics.retrieval_metrics(sim)
    assert out["video_to_text"] == metrics.retrieval_metrics(sim.t())
    assert torch.equal(metrics.ranks_of(sim, torch.arange(7)), metrics.ranks(sim))


def test_multi_caption_metrics_refuse_bad_owners():
    with pytest.raises(ValueError, match="one video in \\[0, 2\\) per caption"):
        metrics.multi_caption_metrics(torch.zeros(3, 2), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="every video needs at least one caption"):
        metrics.multi_caption_metrics(torch.zeros(3, 3), torch.tensor([0, 0, 1]))


def test_paired_difference():
    d = metrics.paired_difference([3.0, 5.0, 4.0], [1.0, 5.5, 3.0])  # differences 2, -0.5, 1
    assert d["mean"] == pytest.approx(2.5 / 3) and d["agree"] == 2 and d["n"] == 3
    assert (d["min"], d["max"]) == (-0.5, 2.0)
    assert d["sd"] == pytest.approx(torch.tensor([2.0, -0.5, 1.0]).std().item())
    with pytest.raises(ValueError, match="one per seed"):
        metrics.paired_difference([1.0, 2.0], [1.0])
