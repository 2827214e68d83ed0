"""Golden outputs: every method switched ON, on the tiny CLIP, from fixed seeds.

Each case builds a method with seeded parameters (those that start at zero -- LoRA's B,
VoP^F's frame positions -- are drawn at random too, so that the method really changes the
output), runs it on seeded inputs and returns named tensors. ``tests/test_golden.py``
compares them with the stored ``methods.safetensors``; ``make golden`` (this file run as
a script) rewrites that file after a change that is meant to move them.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

from clipadapt.core import models, patching, seeds
from clipadapt.methods import coop, lora, scpnet, softcpt, tempme, vop, vpt
from clipadapt.methods.tempme_schedule import Schedule

STORE = Path(__file__).with_name("methods.safetensors")


def _perturb(module: torch.nn.Module, name: str, pattern: str, std: float = 0.02) -> None:
    """Draw every parameter whose name contains ``pattern`` from a named stream."""
    with torch.no_grad():
        for pname, p in module.named_parameters():
            if pattern in pname:
                p.copy_(torch.randn(p.shape, generator=seeds.generator(0, "golden", name, pname)) * std)


def outputs() -> dict[str, torch.Tensor]:
    clip, _, tok = models.load_clip("tiny-clip", "synthetic")
    images = torch.randn(2, 3, 64, 64, generator=seeds.generator(0, "golden", "images"))
    videos = torch.randn(2, 4, 3, 64, 64, generator=seeds.generator(0, "golden", "videos"))
    ids = tok(["a red circle moves from the left to the right.", "a small blue square."])
    out = {}
    with torch.no_grad():
        seeds.seed_everything(0)
        m = coop.CoOp(copy.deepcopy(clip), tok, ["circle", "square", "triangle"], n_ctx=4)
        out["coop.text_features"] = m.text_features()
        out["coop.logits"] = m(images)

        seeds.seed_everything(0)
        m = vpt.DeepVisualPrompts(copy.deepcopy(clip), 4, class_features=out["coop.text_features"])
        out["vpt.image_features"] = m.encode_image(images)

        seeds.seed_everything(0)
        m = copy.deepcopy(clip)
        lora.add_lora(m, rank=4)
        _perturb(m, "lora", "lora_B")
        out["lora.image_features"] = m.encode_image(images)
        out["lora.text_features"] = m.encode_text(ids)

        for variant in vop.VARIANTS:
            seeds.seed_everything(0)
            m = vop.VoP(copy.deepcopy(clip), variant, frames=4, ks=1)
            _perturb(m, variant, "frame_position")
            out[f"vop.{variant}.video_features"] = m.encode_video(videos)
            out[f"vop.{variant}.text_features"] = m.encode_text(ids)

        for variant in ("NATA", "CATA"):
            seeds.seed_everything(0)
            tasks = [{"name": "the shapes of red objects", "classnames": ["circle", "square"], "template": "{}"},
                     {"name": "the colours of circles", "classnames": ["red", "blue", "green"], "template": "{}"}]
            m = softcpt.SoftCPT(copy.deepcopy(clip), tok, tasks, variant, n_ctx=4)
            out[f"softcpt.{variant}.class_features"] = m.class_features()
            out[f"softcpt.{variant}.logits"] = m(images)
        seeds.seed_everything(0)
        m = scpnet.SCPNet(copy.deepcopy(clip), tok, ["circle", "square", "triangle", "cross"], topk=3)
        out["scpnet.adjacency"], out["scpnet.smoothing"] = m.adjacency, m.smoothing
        out["scpnet.text_features"] = m.text_features()
        out["scpnet.logits"] = m(images)

        m = copy.deepcopy(clip)
        state = patching.apply(m.visual, r=4, trace_source=True)
        out["merge.r4.image_features"] = m.encode_image(images)
        out["merge.r4.tokens"] = torch.tensor(state.tokens)
        out["merge.r4.source"] = state.source.float()

        seeds.seed_everything(0)  # 4 frames: ImgMe in layer 0, then 4 -> 2 -> 1 clips
        m = tempme.TempMe(copy.deepcopy(clip), Schedule(r=2, merge_layers=(1, 2), frames_per_merge=(2, 2)),
                          frames=4, rank=4, trace_source=True)
        _perturb(m, "tempme", "lora_B")
        _perturb(m, "tempme", "clip_positions")
        out["tempme.video_features"] = m.encode_video(videos)
        out["tempme.text_features"] = m.encode_text(ids)
        out["tempme.tokens"] = torch.tensor(m.state.tokens)
        out["tempme.source"] = m.state.source.float()
    return {k: v.detach().float().contiguous() for k, v in out.items()}


if __name__ == "__main__":
    from clipadapt.core.checkpoints import save_checkpoint

    save_checkpoint(STORE, outputs(), {"made_by": "tests/golden/cases.py", "torch": torch.__version__})
    print(f"wrote {len(outputs())} golden tensors to {STORE}", file=sys.stderr)
