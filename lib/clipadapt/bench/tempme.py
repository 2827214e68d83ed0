"""TempMe's benchmark (``python -m clipadapt.bench --tempme``): cost, speed and memory, side by side.

In one process, on the CPU with this machine's threads (and on CUDA where a GPU is
present), for 12-frame videos on ViT-B/32 (and ViT-B/16 with fewer repeats):

* inference of the unmerged encoder (mean pooling; LoRA merged, so the stock cost), VoP, VoP^F
  and TempMe (LoRA merged): multiply-adds per video, videos/s (median of repeats after a
  warm-up) and peak memory;
* the merge overhead -- matching, size-weighted gather/scatter, clip regrouping -- as a share
  of TempMe's encoder time, timed around those functions of :mod:`clipadapt.core.merge` by a
  :class:`MergeTimer`, whose timed copies the measured TempMe is given (``ops=``);
* one training step (video and text forward, symmetric InfoNCE, backward, AdamW) of LoRA
  against TempMe + LoRA, and of full fine-tuning against TempMe + full fine-tuning.

Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU; on the CPU it is the rise of
the process's resident set over its level before the call (sampled every 2 ms, after
``malloc_trim`` hands freed memory back), which counts activations and, for training, the
gradients and optimiser state. Random weights (the pre-trained ones cannot be downloaded
here) cost the same as trained ones. Ratios are the point: every row runs in the same
process, one after another, so they share the machine's load.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import dataclasses
import time

import torch

from ..core import flops, losses, merge, models
from ..methods import lora, mean_pool, tempme, vop
from .memory import PeakMemory

TARGETS = {"TempMe / unmerged": 1.45, "TempMe / VoP": 1.65}
MAX_OVERHEAD = 0.05
PAPER = "TempMe paper (cited): full fine-tuning 1.57x faster training at 75.2% of the memory (A100)"


def _trim() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def peak_memory(fn, device: torch.device):
    """``(fn(), peak bytes)``: CUDA's allocator peak, or the resident set's rise on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        out = fn()
        torch.cuda.synchronize()
        return out, torch.cuda.max_memory_allocated() - before
    _trim()
    sampler = PeakMemory(interval=0.002, children=False)
    base = sampler.rss()
    with sampler:
        out = fn()
    return out, max(sampler.peak, sampler.rss()) - base


class MergeTimer:
    """Merging functions (:attr:`ops`, a :class:`clipadapt.core.merge.MergeOps` for a TempMe's
    ``ops=``) that add the seconds spent in matching, merging and regrouping to :attr:`spent`
    while the timer is on (``with timer:``, which starts from zero); off, they only call
    :mod:`clipadapt.core.merge`'s. Nothing outside the timer changes."""

    TIMED = ("bipartite_soft_matching", "merge_wavg", "merge_source", "group_frames", "start_size")

    def __init__(self, device: torch.device):
        self.on, self.spent = False, 0.0
        self._sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        stock = merge.MergeOps()
        self.ops = dataclasses.replace(stock, **{n: self._timed(getattr(stock, n)) for n in self.TIMED})

    def _timed(self, fn):
        def wrapper(*args, **kwargs):
            if not self.on:
                return fn(*args, **kwargs)
            self._sync()
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            self._sync()
            self.spent += time.perf_counter() - t0
            return out
        return wrapper

    def __enter__(self) -> "MergeTimer":
        self.on, self.spent = True, 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.on = False


def _encoders(name: str, device: torch.device, frames: int, ops: merge.MergeOps | None = None) -> tuple[int, dict]:
    """The input size and the video encoders compared, each ``videos (B, T, 3, H, W) -> (B, D)``;
    ``ops``: the merging functions TempMe calls (default: :mod:`clipadapt.core.merge`'s)."""
    base = models.create(name).to(device).eval()
    out = {"unmerged": mean_pool.MeanPoolCLIP(base, "none").encode_video}
    for label, variant in (("VoP", "vop"), ("VoP^F", "F")):
        out[label] = vop.VoP(copy.deepcopy(base), variant, frames=frames).to(device).eval().encode_video
    m = tempme.TempMe(copy.deepcopy(base), tempme.schedule_for(name), frames=frames, ops=ops).to(device).eval()
    lora.remove_lora(m.clip, merge=True)  # LoRA folded into the weights: no extra cost
    out["TempMe"] = m.encode_video
    return base.visual.image_size[0], out


def inference(name: str, device: torch.device, batch: int, repeats: int, frames: int = 12) -> list[dict]:
    timer = MergeTimer(device)  # off except around the overhead's own timing below
    size, encoders = _encoders(name, device, frames, timer.ops)
    video = torch.randn(batch, frames, 3, size, size, device=device)
    rows = []
    for label, fn in encoders.items():
        macs = flops.count_macs(fn, video[:1]).total
        timing, mem = peak_memory(lambda: flops.time_forward(fn, video, items=batch, warmup=1, repeats=repeats), device)
        row = {"model": name, "encoder": label, "gmacs": macs / 1e9, "videos_s": timing.throughput,
               "peak_mb": mem / 2**20}
        if label == "TempMe":
            with torch.no_grad(), timer:
                t0 = time.perf_counter()
                for _ in range(repeats):
                    fn(video)
                total = time.perf_counter() - t0
            row["merge_share"] = timer.spent / total
        rows.append(row)
    return rows


def _train_step(module, clip, video, ids, device):
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-6)

    def step():
        v = torch.nn.functional.normalize(module.encode_video(video), dim=-1)
        t = torch.nn.functional.normalize(module.encode_text(ids), dim=-1)
        loss = losses.clip_loss(v, t, clip.logit_scale.exp().detach())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def training(name: str, device: torch.device, batch: int, repeats: int, frames: int = 12) -> list[dict]:
    base = models.create(name).to(device)
    size = base.visual.image_size[0]
    video = torch.randn(batch, frames, 3, size, size, device=device)
    ids = torch.randint(1, 1000, (batch, base.context_length), device=device)
    ids[:, -1] = base.token_embedding.num_embeddings - 1  # end of text: where CLIP pools
    rows = []
    for policy in ("lora", "full"):
        for label in ("unmerged", "TempMe"):
            clip = copy.deepcopy(base)
            if label == "TempMe":
                module = tempme.TempMe(clip, tempme.schedule_for(name), frames=frames, policy=policy).to(device)
            else:
                module = mean_pool.MeanPoolCLIP(clip, policy).to(device)
            module.train()
            step = _train_step(module, clip, video, ids, device)
            with torch.enable_grad():
                step()  # warm-up (and the optimiser's state)

                def timed():
                    return flops.time_forward(torch.enable_grad()(step), warmup=0, repeats=repeats)

                timing, mem = peak_memory(timed, device)
            rows.append({"model": name, "tuning": policy, "encoder": label, "step_s": timing.median_s,
                         "peak_mb": mem / 2**20, "trainable": models.count_parameters(module).trainable})
            del module, clip, step
    return rows


def report_inference(infer: list[dict], device: torch.device) -> bool:
    """Print the inference table and the targets; True when the ViT-B/32 targets are met."""
    ok = True
    print(f"\nTempMe inference on {device} ({torch.get_num_threads()} threads), 12-frame videos")
    print(f"{'model':<10}{'encoder':<10}{'G MACs/video':>13}{'videos/s':>10}{'peak MB':>9}{'TempMe x':>10}")
    for model in dict.fromkeys(r["model"] for r in infer):
        rows = {r["encoder"]: r for r in infer if r["model"] == model}
        t = rows["TempMe"]["videos_s"]
        for label, r in rows.items():
            print(f"{model:<10}{label:<10}{r['gmacs']:>13.2f}{r['videos_s']:>10.2f}{r['peak_mb']:>9.0f}"
                  f"{t / r['videos_s']:>10.2f}")
        share = rows["TempMe"]["merge_share"]
        checks = [("TempMe / unmerged", t / rows["unmerged"]["videos_s"], TARGETS["TempMe / unmerged"],
                   rows["unmerged"]["gmacs"] / rows["TempMe"]["gmacs"]),
                  ("TempMe / VoP", t / rows["VoP"]["videos_s"], TARGETS["TempMe / VoP"],
                   rows["VoP"]["gmacs"] / rows["TempMe"]["gmacs"])]
        for what, ratio, target, limit in checks:
            good = ratio >= target
            ok &= good if model == "ViT-B-32" else True
            print(f"  {model} {what} throughput: {ratio:.2f}x (target >= {target}x, multiply-add limit "
                  f"{limit:.2f}x){'' if model == 'ViT-B-32' else ' [no target]'}  {'yes' if good else 'NO'}")
        good = share <= MAX_OVERHEAD
        ok &= good if model == "ViT-B-32" else True
        print(f"  {model} merge overhead: {100 * share:.1f}% of TempMe's encoder time (target <= "
              f"{100 * MAX_OVERHEAD:.0f}%)  {'yes' if good else 'NO'}", flush=True)
    return ok


def report_training(train: list[dict], device: torch.device) -> None:
    print(f"\none training step (video + text forward, InfoNCE, backward, AdamW) on {device}")
    print(f"{'model':<10}{'tuning':<7}{'encoder':<10}{'trainable':>13}{'step s':>9}{'peak MB':>9}{'speed-up':>10}"
          f"{'memory':>8}")
    for r in train:
        ref = next(x for x in train if x["model"] == r["model"] and x["tuning"] == r["tuning"]
                   and x["encoder"] == "unmerged")
        print(f"{r['model']:<10}{r['tuning']:<7}{r['encoder']:<10}{r['trainable']:>13,}{r['step_s']:>9.2f}"
              f"{r['peak_mb']:>9.0f}{ref['step_s'] / r['step_s']:>9.2f}x{100 * r['peak_mb'] / ref['peak_mb']:>7.1f}%")
    print(PAPER, flush=True)


def run(repeats: int = 3) -> bool:
    """The whole benchmark on every device present; True when the ViT-B/32 targets are met."""
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    ok = True
    for device in devices:
        gpu = device.type == "cuda"
        infer = inference("ViT-B-32", device, batch=16 if gpu else 2, repeats=10 if gpu else repeats)
        infer += inference("ViT-B-16", device, batch=8 if gpu else 1, repeats=5 if gpu else 1)
        ok &= report_inference(infer, device)
        report_training(training("ViT-B-32", device, batch=16 if gpu else 2, repeats=5 if gpu else 2), device)
    return ok
