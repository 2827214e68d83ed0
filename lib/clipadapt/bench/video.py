"""Part II's video costs: ``python -m clipadapt.bench --video``."""

from __future__ import annotations

import tempfile
import time

import imageio_ffmpeg
import numpy as np
import torch

from ..core import flops, models
from ..data import video, worlds
from ..methods import vop


def bench_video(n_videos: int = 40, repeats: int = 3) -> None:
    """Part II: decoding throughput (decord against imageio-ffmpeg's reader, a plain ffmpeg
    pipe) on the video world's mp4 files, and per VoP variant the multiply-adds of a
    12-frame video on ViT-B/32 and the CPU throughput of the tiny CLIP's video encoder."""
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
