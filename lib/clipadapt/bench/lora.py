"""clipadapt's LoRA beside peft's: ``python -m clipadapt.bench --lora``."""

from __future__ import annotations

import copy

import torch

from ..core import flops, models
from ..methods import lora


def bench_lora(repeats: int = 5) -> None:
    """clipadapt's LoRA against peft's (``pip install peft``) on the image tower, rank 8:
    trainable parameters, equality at initialisation, CPU time of a training step and of
    inference."""
    try:
        import peft  # lazy: peft is optional (not a dependency), the reference this table compares against
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
