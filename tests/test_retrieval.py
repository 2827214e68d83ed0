import copy
from types import SimpleNamespace

import pytest
import torch

from clipadapt import profiles
from clipadapt import tasks
from clipadapt.core import losses, metrics, models
from clipadapt.data import video, worlds
from clipadapt.methods import baselines, mean_pool
from clipadapt.tasks.retrieval import truncate_tokens
from clipadapt.training import driver, recipes


@pytest.fixture(scope="module")
def video_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    vw = worlds.VideoWorld(64, frames=4, p_appear=0.0)
    vw.image.noise = 0.0
    records = worlds.write_videos(vw, 6, worlds.generator(0, "retrieval test"), folder)
    ds = video.VideoTextDataset([(folder / r["video"], r["caption"]) for r in records], frames=4, image_size=64)
    index = {r["video"]: i for i, r in enumerate(records)}
    partners = [index[r["twin"]] for r in records]
    twins = [records[p]["caption"] for p in partners]
    return ds, partners, twins


def test_policies_train_what_they_say():
    clip = models.create("tiny-clip")
    counts = {t: models.count_parameters(mean_pool.MeanPoolCLIP(copy.deepcopy(clip), t)).trainable
              for t in baselines.POLICIES}
    total = models.count_parameters(clip).total
    assert counts["none"] == 0 and counts["full"] == total - 1  # all but the temperature
    assert 0 < counts["lora"] < counts["partial"] < counts["full"]
    with pytest.raises(ValueError, match="unknown tuning"):
        mean_pool.MeanPoolCLIP(clip, "half")


def test_caption_positives():
    p = losses.caption_positives(["a", "b", "a"])
    assert p.tolist() == [[True, False, True], [False, True, False], [True, False, True]]


def test_mean_pooling_cannot_tell_a_video_from_its_reversal(tiny_clip, video_data):
    ds, partners, _ = video_data
    model = mean_pool.MeanPoolCLIP(copy.deepcopy(tiny_clip[0]), "none")
    v, _ = tasks.RetrievalTask(ds, ds, tiny_clip[2]).features(model)
    cos = (v * v[partners]).sum(1) / (v.norm(dim=1) * v[partners].norm(dim=1))
    assert (cos > 0.995).all()  # same frames, other order: (almost) the same video feature


def test_run_evaluate_and_reversal(tiny_clip, video_data):
    ds, partners, twins = video_data
    task = tasks.RetrievalTask(ds, ds, tiny_clip[2], partners=partners, twins=twins)
    recipe = recipes.get("VoP", profiles.get("tiny")).replace(steps=6, batch_size=6)
    r = driver.run("VoP", tiny_clip[0], tiny_clip[2], task, variant="F", recipe=recipe, keep=True)
    assert r.steps == 6 and all(torch.isfinite(torch.tensor(r.history.loss)))
    assert set(r.metrics) == {"text_to_video", "video_to_text", "reversal"}
    assert set(r.metrics["text_to_video"]) == {"R@1", "R@5", "R@10", "MdR", "MnR", "R-Sum"}
    assert 0.0 <= r.metrics["reversal"] <= 1.0
    assert r.trainable == models.count_parameters(r.module).trainable > 0 and r.macs > 0
    # a batch holds pairs with their twins, and depends only on (seed, step)
    run = driver.prepare("VoP", tiny_clip[0], tiny_clip[2], task, variant="F", recipe=recipe)
    videos, captions = run.batch(3)
    assert len(captions) == 6 and torch.equal(run.batch(3)[0], videos)
    # the same seed gives the same run
    again = driver.run("VoP", tiny_clip[0], tiny_clip[2], task, variant="F", recipe=recipe)
    assert again.metrics == r.metrics and again.history.loss == r.history.loss


def test_several_captions_per_video_use_the_multi_caption_protocol(tiny_clip, video_data):
    """MSVD's protocol: every caption a query, each video encoded once; with one caption per
    video the evaluation is the square one, as for MSR-VTT."""
    clip, _, tok = tiny_clip
    ds, _, _ = video_data
    pairs = [(p, c) for p, c in ds.records[:3]]
    multi = video.VideoTextDataset([pairs[0], (pairs[0][0], "another caption of it"), pairs[1], pairs[2],
                                    (pairs[2][0], "a third video's second caption")], frames=4, image_size=64)
    assert multi.captions_per_video == 2 and multi.video_groups() == ([0, 2, 3], [0, 0, 1, 2, 2])
    model = mean_pool.MeanPoolCLIP(copy.deepcopy(clip), "none")
    task = tasks.RetrievalTask(multi, multi, tok)
    out = task.evaluate(model)
    v, t, video_of = task.caption_features(model)
    assert v.shape[0] == 3 and t.shape[0] == 5 and video_of.tolist() == [0, 0, 1, 2, 2]
    assert out == metrics.multi_caption_metrics(t @ v.t(), video_of)
    single = video.VideoTextDataset(pairs, frames=4, image_size=64)
    square = tasks.RetrievalTask(single, single, tok)
    v1, t1 = square.features(model)
    assert single.captions_per_video == 1
    assert square.evaluate(model) == {"text_to_video": metrics.retrieval_metrics(t1 @ v1.t()),
                                      "video_to_text": metrics.retrieval_metrics(v1 @ t1.t())}


def test_paragraphs_are_cut_to_max_tokens_as_clip4clip_does(tiny_clip):
    _, _, tok = tiny_clip
    ids = tok(["a dog", "one two three four five six seven eight nine ten eleven twelve"])  # (2, 32)
    cut = truncate_tokens(ids, 8)
    assert torch.equal(cut[0], ids[0])  # short texts are untouched
    assert cut[1, :7].tolist() == ids[1, :7].tolist() and cut[1, 7] == ids[1].max() and not cut[1, 8:].any()
    task = tasks.RetrievalTask.__new__(tasks.RetrievalTask)
    task.tokenizer, task.max_tokens = tok, 8
    assert torch.equal(task.tokens(["one two three four five six seven eight nine ten"]),
                       truncate_tokens(tok(["one two three four five six seven eight nine ten"]), 8))
    with pytest.raises(ValueError, match="max_tokens must leave room"):
        tasks.RetrievalTask(None, SimpleNamespace(frames=4), tok, max_tokens=1)
