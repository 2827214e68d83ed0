import copy

import pytest
import torch

from clipadapt import models, retrieval
from clipadapt.data import video, worlds
from clipadapt.methods.vop import VoP


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


def test_tunings_train_what_they_say():
    clip = models.create("tiny-clip")
    counts = {t: models.count_parameters(retrieval.MeanPoolCLIP(copy.deepcopy(clip), t)).trainable
              for t in retrieval.TUNINGS}
    total = models.count_parameters(clip).total
    assert counts["none"] == 0 and counts["full"] == total - 1  # all but the temperature
    assert 0 < counts["lora"] < counts["partial"] < counts["full"]
    with pytest.raises(ValueError, match="unknown tuning"):
        retrieval.MeanPoolCLIP(clip, "half")


def test_caption_positives():
    p = retrieval.caption_positives(["a", "b", "a"])
    assert p.tolist() == [[True, False, True], [False, True, False], [True, False, True]]


def test_mean_pooling_cannot_tell_a_video_from_its_reversal(tiny_clip, video_data):
    ds, partners, _ = video_data
    model = retrieval.MeanPoolCLIP(copy.deepcopy(tiny_clip[0]), "none")
    v, _ = retrieval.features(model, ds, tiny_clip[2])
    cos = (v * v[partners]).sum(1) / (v.norm(dim=1) * v[partners].norm(dim=1))
    assert (cos > 0.995).all()  # same frames, other order: (almost) the same video feature


def test_fit_evaluate_and_reversal(tiny_clip, video_data):
    ds, partners, twins = video_data
    ds.train = True
    model = VoP(copy.deepcopy(tiny_clip[0]), "F", frames=4, ks=1)
    history = retrieval.fit(model, ds, tiny_clip[2], steps=6, lr=1e-2, batch_size=6, progress=False, partners=partners)
    assert len(history.loss) == 6 and all(torch.isfinite(torch.tensor(history.loss)))
    ds.train = False
    result = retrieval.evaluate(model, ds, tiny_clip[2])
    assert set(result) == {"text_to_video", "video_to_text"}
    assert set(result["text_to_video"]) == {"R@1", "R@5", "R@10", "MdR", "MnR", "R-Sum"}
    acc = retrieval.reversal_accuracy(model, ds, tiny_clip[2], twins)
    assert 0.0 <= acc <= 1.0
