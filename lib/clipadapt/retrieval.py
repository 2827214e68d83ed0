"""Text-video retrieval with a frozen or partly tuned image CLIP (Part II).

:class:`MeanPoolCLIP` is CLIP4Clip's parameter-free baseline: every frame through the image
encoder, the video feature the mean of the normalised frame features. ``tuning`` chooses
what trains: ``"none"`` (zero-shot), ``"full"`` (every weight), ``"partial"`` (the last
``last_layers`` blocks of both towers and the projections), ``"lora"`` (LoRA on every
attention layer). VoP (:mod:`clipadapt.methods.vop`) has the same ``encode_video`` /
``encode_text`` interface, so :func:`fit` and :func:`evaluate` serve both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import losses, metrics, models, train
from .files import atomic_path
from .methods import lora

TUNINGS = ("none", "full", "partial", "lora")


class MeanPoolCLIP(nn.Module):
    def __init__(self, clip: nn.Module, tuning: str = "none", last_layers: int = 2, rank: int = 8):
        super().__init__()
        if tuning not in TUNINGS:
            raise ValueError(f"unknown tuning {tuning!r}; choose one of {TUNINGS}")
        self.clip, self.tuning = clip, tuning
        models.freeze(clip)
        if tuning == "full":
            models.unfreeze(clip)
        elif tuning == "partial":
            for blocks in (clip.visual.transformer.resblocks, clip.transformer.resblocks):
                for block in blocks[-last_layers:]:
                    models.unfreeze(block)
            for p in (clip.visual.proj, clip.text_projection):
                p.requires_grad_(True)
            models.unfreeze(clip.visual.ln_post)
            models.unfreeze(clip.ln_final)
        elif tuning == "lora":
            lora.add_lora(clip, rank=rank)
        clip.logit_scale.requires_grad_(False)

    def frame_features(self, video: torch.Tensor) -> torch.Tensor:
        B, T = video.shape[:2]
        return self.clip.encode_image(video.flatten(0, 1)).reshape(B, T, -1)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """Mean of the normalised frame features, ``(B, D)``."""
        return F.normalize(self.frame_features(video), dim=-1).mean(1)

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_text(ids)


def caption_positives(captions: list[str]) -> torch.Tensor:
    """Pairs with identical captions count as positives of each other (templated captions
    repeat inside a batch; see chapter 1)."""
    index = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    ids = torch.tensor([index[c] for c in captions])
    return ids[:, None] == ids[None, :]


def fit(model: nn.Module, dataset, tokenizer, steps: int, lr: float, batch_size: int = 16, seed: int = 0,
        weight_decay: float = 0.2, progress: bool = True, description: str = "retrieval",
        partners: list[int] | None = None) -> train.History:
    """Train ``model`` (``encode_video``/``encode_text``) with the symmetric InfoNCE loss on
    random batches of ``dataset`` (a :class:`~clipadapt.data.video.VideoTextDataset`).

    ``partners[i]`` (optional) is the index of pair ``i``'s twin (its time reversal): then
    every batch holds ``batch_size // 2`` pairs together with their twins, so that the
    loss can only be lowered by telling each video from its reversal.
    """
    device = next(model.parameters()).device
    scale = model.clip.logit_scale.exp().detach().clamp(max=100)

    def batches(step):
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        if partners is None:
            idx = torch.randperm(len(dataset), generator=g)[:batch_size].tolist()
        else:
            first = torch.randperm(len(dataset), generator=g)[: batch_size // 2].tolist()
            idx = list(dict.fromkeys(first + [partners[i] for i in first]))
        videos, captions, _ = dataset.batch(idx, g)
        return videos.to(device), captions

    def loss_fn(batch):
        videos, captions = batch
        v = model.encode_video(videos)
        t = model.encode_text(tokenizer(captions).to(device))
        return losses.clip_loss(v, t, scale, caption_positives(captions).to(device))

    config = train.TrainConfig(steps=steps, lr=lr, weight_decay=weight_decay, warmup=min(20, steps // 10),
                               grad_clip=1.0, progress=progress, description=description)
    return train.fit(model, loss_fn, batches, config, device=device)


@torch.no_grad()
def features(model: nn.Module, dataset, tokenizer, batch_size: int = 32):
    """Normalised video and caption features of every pair of ``dataset``, in order."""
    model.eval()
    device = next(model.parameters()).device
    vids, txts = [], []
    for start in range(0, len(dataset), batch_size):
        idx = list(range(start, min(start + batch_size, len(dataset))))
        videos, captions, failures = dataset.batch(idx)
        if failures:
            raise RuntimeError(f"evaluation needs every video; these failed: {failures}")
        vids.append(F.normalize(model.encode_video(videos.to(device)), dim=-1))
        txts.append(F.normalize(model.encode_text(tokenizer(captions).to(device)), dim=-1))
    return torch.cat(vids), torch.cat(txts)


def evaluate(model: nn.Module, dataset, tokenizer) -> dict[str, dict[str, float]]:
    """R@1/5/10, MdR, MnR and R-Sum, text-to-video and video-to-text."""
    v, t = features(model, dataset, tokenizer)
    sim = t @ v.t()
    return {"text_to_video": metrics.retrieval_metrics(sim), "video_to_text": metrics.retrieval_metrics(sim.t())}


@torch.no_grad()
def reversal_accuracy(model: nn.Module, dataset, tokenizer, twins: list[str]) -> float:
    """How often a video scores its own caption above its time-reversed twin caption
    ("from the right to the left" for "from the left to the right"); 0.5 is guessing."""
    v, t = features(model, dataset, tokenizer)
    device = v.device
    tw = torch.cat([F.normalize(model.encode_text(tokenizer(twins[i:i + 64]).to(device)), dim=-1)
                    for i in range(0, len(twins), 64)])
    return ((v * t).sum(1) > (v * tw).sum(1)).float().mean().item()


def video_data(profile, folder, data_root=None, seed: int = 0) -> dict:
    """The training and test sets of Part II for a profile.

    ``synthetic``: the video world's videos and their reversal twins, written as mp4 files
    into ``folder`` (kept there: a second call with the same settings reuses them) and read
    back with decord. ``msrvtt``: MSR-VTT's 9k training captions (a seeded subset of
    ``video_train_pairs``) and the 1k-A test set. Returns ``train``, ``test`` (datasets),
    ``partners`` / ``test_partners`` (index of each pair's twin, or None) and ``twins`` (the
    twin caption of each test pair, or None).
    """
    import json
    import os
    from pathlib import Path

    from . import profiles
    from .data import msrvtt, video, worlds

    prof = profiles.get(profile)
    folder = Path(folder)
    size = 64 if prof.clip_model in models.TINY_MODELS else 224
    if prof.video_data == "synthetic":
        out = {}
        for split, n in (("train", prof.video_train_pairs), ("test", prof.video_test_pairs)):
            where = folder / split
            manifest = where / "manifest.json"
            settings = {"n": n, "frames": prof.video_frames, "seed": seed, "size": size}
            records = None
            if manifest.is_file():
                saved = json.loads(manifest.read_text())
                if saved.get("settings") == settings:
                    records = saved["records"]
            if records is None:
                world = worlds.VideoWorld(size, frames=prof.video_frames, p_appear=0.0)
                records = worlds.write_videos(world, n, worlds.generator(seed, "videos", split), where)
                with atomic_path(manifest) as tmp:
                    tmp.write_text(json.dumps({"settings": settings, "records": records}))
            index = {r["video"]: i for i, r in enumerate(records)}
            out[split] = (records, [index[r["twin"]] for r in records])
        train_records, partners = out["train"]
        test_records, test_partners = out["test"]
        train = video.VideoTextDataset([(folder / "train" / r["video"], r["caption"]) for r in train_records],
                                       frames=prof.video_frames, image_size=size, train=True)
        test = video.VideoTextDataset([(folder / "test" / r["video"], r["caption"]) for r in test_records],
                                      frames=prof.video_frames, image_size=size)
        twins = [test_records[p]["caption"] for p in test_partners]
        return {"train": train, "test": test, "partners": partners, "twins": twins, "test_partners": test_partners}
    root = Path(data_root or os.environ.get("CLIPADAPT_DATA", "data")) / "msrvtt"
    ds = msrvtt.load_msrvtt(root)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(ds.train), generator=g)[: prof.video_train_pairs].tolist()
    train = video.VideoTextDataset([(ds.video_path(ds.train[i][0]), ds.train[i][1]) for i in pick],
                                   frames=prof.video_frames, image_size=size, train=True)
    test = video.VideoTextDataset([(ds.video_path(v), c) for v, c in ds.test[: prof.video_test_pairs]],
                                  frames=prof.video_frames, image_size=size)
    return {"train": train, "test": test, "partners": None, "twins": None, "test_partners": None}
