import copy

import pytest
import torch

from clipadapt import tasks
from clipadapt.core import losses, models
from clipadapt.data import video, worlds
from clipadapt.methods import baselines, mean_pool
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
    recipe = recipes.get("VoP", "tiny").replace(steps=6, batch_size=6)
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
