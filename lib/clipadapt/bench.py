"""Benchmarks that print a table: ``python -m clipadapt.bench`` (``make bench``).

For each chapter: wall time of its papermill execution under ``tiny`` and the peak memory
(resident set) of the kernel process, sampled every 50 ms, against the targets. Then the
shipped tiny CLIP's zero-shot accuracy and retrieval, measured now, against the targets.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from . import book
from .memory import PeakMemory

TARGETS_S = {"01_clip_from_scratch": 150, "02_adapting_clip": 180, "03_video_retrieval": 180, "04_vop": 180,
             "05_tempme": 180, "06_scpnet": 180, "07_softcpt": 180}
TARGET_PEAK_GB = 4.0


def bench_chapters(notebooks: list[str] | None, profile: str) -> list[dict]:
    rows = []
    chosen = [p.stem for p in book.toc_notebooks()]
    for stem in notebooks or chosen:
        with tempfile.TemporaryDirectory() as tmp, PeakMemory() as mem:
            start = time.perf_counter()
            book.execute(profile, dest=Path(tmp) / "exec", notebooks=[stem], log=lambda *a: None)
            seconds = time.perf_counter() - start
        rows.append({"chapter": stem, "seconds": seconds, "target_s": TARGETS_S.get(stem),
                     "peak_gb": mem.peak / 2**30})
    return rows


def bench_tiny_clip() -> dict:
    import torch

    from . import models, pretrain

    torch.set_num_threads(min(2, torch.get_num_threads()))
    model, _, tokenizer = models.load_clip("tiny-clip", pretrained="synthetic")
    return pretrain.evaluate(model, tokenizer, n_images=1000, n_pairs=200)


def bench_lora(repeats: int = 5) -> None:
    """clipadapt's LoRA against peft's (``pip install peft``) on the image tower, rank 8:
    trainable parameters, equality at initialisation, CPU time of a training step and of
    inference."""
    import copy

    import torch

    from . import flops, models
    from .methods import lora

    try:
        import peft
    except ImportError:
        print("peft is not installed (pip install peft); only clipadapt's LoRA can be measured")
        peft = None
    torch.set_num_threads(min(2, torch.get_num_threads()))
    print(f"{'model':<10}{'LoRA':<16}{'trainable':>11}{'= stock':>9}{'train ms':>10}{'infer ms':>10}")
    for name, pretrained, batch in (("tiny-clip", "synthetic", 32), ("ViT-B-32", None, 8)):
        base, _, _ = models.load_clip(name, pretrained)
        layers = len(base.visual.transformer.resblocks)
        variants = {}
        ours = copy.deepcopy(base)
        lora.add_lora(ours, rank=8, towers=("visual",))
        variants["clipadapt"] = (ours, ours)
        if peft is not None:
            cfg = peft.LoraConfig(r=8, lora_alpha=8,
                                  target_modules=[f"visual.transformer.resblocks.{i}.attn" for i in range(layers)])
            wrapped = peft.get_peft_model(copy.deepcopy(base), cfg)
            variants[f"peft {peft.__version__}"] = (wrapped, wrapped.base_model.model)
        size = base.visual.image_size[0]
        x = torch.randn(batch, 3, size, size)
        with torch.no_grad():
            stock = base.encode_image(x)
        for label, (holder, model) in variants.items():
            with torch.no_grad():
                same = torch.allclose(model.encode_image(x), stock, atol=1e-5)
            model.train()

            def step():
                model.encode_image(x).sum().backward()

            timing = flops.time_forward(lambda: torch.enable_grad()(step)(), warmup=2, repeats=repeats)
            model.eval()
            infer = flops.time_forward(model.encode_image, x, warmup=2, repeats=repeats)
            print(f"{name:<10}{label:<16}{models.count_parameters(holder).trainable:>11,}{str(same):>9}"
                  f"{1e3 * timing.median_s:>10.1f}{1e3 * infer.median_s:>10.1f}")


def bench_video(n_videos: int = 40, repeats: int = 3) -> None:
    """Part II: decoding throughput (decord against imageio-ffmpeg's reader, a plain ffmpeg
    pipe) on the video world's mp4 files, and per VoP variant the multiply-adds of a
    12-frame video on ViT-B/32 and the CPU throughput of the tiny CLIP's video encoder."""
    import tempfile
    import time

    import imageio_ffmpeg
    import numpy as np
    import torch

    from . import flops, models
    from .data import video, worlds
    from .methods import vop

    torch.set_num_threads(min(2, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        vw = worlds.VideoWorld(64, frames=24, p_appear=0.0)
        records = worlds.write_videos(vw, n_videos // 2, worlds.generator(0, "bench"), tmp)
        paths = [f"{tmp}/{r['video']}" for r in records]
        frames = len(paths) * 24

        def with_decord():
            for p in paths:
                video.read_frames(p)

        def with_ffmpeg_pipe():
            for p in paths:
                reader = imageio_ffmpeg.read_frames(p)
                meta = next(reader)
                w, h = meta["size"]
                np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])

        print(f"decoding {len(paths)} mp4 files of 24 frames, 64x64 (median of {repeats}):")
        for label, fn in (("decord 0.6 (VideoReader.get_batch)", with_decord),
                          ("imageio-ffmpeg (ffmpeg pipe)", with_ffmpeg_pipe)):
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            times.sort()
            print(f"  {label:<36}{frames / times[len(times) // 2]:>10,.0f} frames/s")
    big = models.create("ViT-B-32")
    tiny = models.create("tiny-clip", pretrained="synthetic")
    video12 = torch.randn(1, 12, 3, 224, 224)
    tiny_videos = torch.randn(8, 12, 3, 64, 64)
    print(f"\n{'variant':<12}{'ViT-B/32 G MACs (12 frames)':>30}{'tiny CLIP videos/s (CPU)':>27}")
    zero = flops.count_macs(lambda v: big.encode_image(v.flatten(0, 1)), video12).total
    speed = flops.time_forward(lambda v: tiny.encode_image(v.flatten(0, 1)), tiny_videos, items=8, repeats=repeats)
    print(f"{'mean pool':<12}{zero / 1e9:>30.2f}{speed.throughput:>27.1f}")
    for variant in vop.VARIANTS:
        macs = flops.count_macs(vop.VoP(big, variant).encode_video, video12).total
        m = vop.VoP(tiny, variant, ks=1)
        speed = flops.time_forward(m.encode_video, tiny_videos, items=8, repeats=repeats)
        print(f"{variant:<12}{macs / 1e9:>30.2f}{speed.throughput:>27.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notebook", action="append", help="only this chapter (repeatable)")
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--skip-chapters", action="store_true")
    parser.add_argument("--lora", action="store_true", help="only compare clipadapt's LoRA with peft's")
    parser.add_argument("--video", action="store_true", help="only decoding throughput and VoP costs")
    parser.add_argument("--tempme", action="store_true", help="only TempMe's cost, speed and memory table")
    args = parser.parse_args(argv)
    if args.tempme:
        from . import bench_tempme

        return 0 if bench_tempme.run() else 1
    if args.lora:
        bench_lora()
        return 0
    if args.video:
        bench_video()
        return 0
    ok = True
    if not args.skip_chapters:
        print(f"{'chapter':<28}{'seconds':>9}{'target':>8}{'peak GB':>9}{'target':>8}  ok")
        for r in bench_chapters(args.notebook, args.profile):
            good = (r["target_s"] is None or r["seconds"] <= r["target_s"]) and r["peak_gb"] <= TARGET_PEAK_GB
            ok &= good
            target = f"{r['target_s']}" if r["target_s"] else "-"
            print(f"{r['chapter']:<28}{r['seconds']:>9.1f}{target:>8}{r['peak_gb']:>9.2f}{TARGET_PEAK_GB:>8.1f}  "
                  f"{'yes' if good else 'NO'}")
        print()
    result = bench_tiny_clip()
    print(f"{'tiny CLIP (shipped), held-out':<34}{'measured':>10}{'chance':>8}{'target':>8}  ok")
    for attr, acc in result["zero_shot"].items():
        target = 90.0 if attr in ("shape", "colour") else None
        good = target is None or 100 * acc >= target
        ok &= good
        print(f"{'zero-shot ' + attr + ' (%)':<34}{100 * acc:>10.1f}{100 * result['chance'][attr]:>8.1f}"
              f"{(f'{target:.0f}' if target else '-'):>8}  {'-' if target is None else 'yes' if good else 'NO'}")
    for key, kind in (("retrieval", "one object"), ("retrieval_two", "two objects")):
        for direction, m in result[key].items():
            label = f"{kind}, {direction.replace('_', ' ')} R@1 (%)"
            print(f"{label:<34}{m['R@1']:>10.1f}{100 / 200:>8.1f}{'-':>8}  -")
    print(f"{'binding, right over swapped (%)':<34}{100 * result['binding']:>10.1f}{50.0:>8.1f}{'-':>8}  -")
    from . import bench_tempme

    ok &= bench_tempme.run()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
