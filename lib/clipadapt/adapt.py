"""Few-shot adaptation of a CLIP, one method at a time (chapter 2).

:func:`adapt` trains one method on a k-shot training set and measures it on the test set;
every method sees the same data, the same loss (cross-entropy over CLIP's scaled cosine
logits), the same optimiser (AdamW, warm-up, cosine decay) and the same number of steps,
and differs only in *what* trains:

==================  ===========================================================
``zero-shot``       nothing: class prompts through the frozen text encoder
``linear probe``    a linear classifier on frozen image features (initialised
                    from the zero-shot class features)
``CoOp``            the prompt's context vectors (:mod:`clipadapt.methods.coop`)
``VPT-deep``        visual prompts in every layer (:mod:`clipadapt.methods.vpt`)
``LoRA``            low-rank updates of every attention projection, both towers
``full fine-tune``  every weight of both towers (the upper reference)
==================  ===========================================================
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import models, train
from .methods import coop, lora, vpt
from .pretrain import encode_texts

METHODS = ("zero-shot", "linear probe", "CoOp", "VPT-deep", "LoRA", "full fine-tune")


@dataclass(frozen=True)
class Settings:
    """Per-method learning rates and sizes (chosen on the tiny world; see chapter 2)."""

    lr: dict
    coop_init: str | None = "a photo of a"
    coop_n_ctx: int = 16
    vpt_prompts: int = 8
    lora_rank: int = 8
    batch_size: int = 32
    weight_decay: float = 0.0


TINY = Settings(lr={"linear probe": 1e-2, "CoOp": 2e-2, "VPT-deep": 1e-2, "LoRA": 2e-3, "full fine-tune": 2e-4})
VIT_B32 = Settings(lr={"linear probe": 1e-3, "CoOp": 2e-3, "VPT-deep": 1e-2, "LoRA": 5e-4, "full fine-tune": 1e-5},
                   coop_init=None)


def settings_for(model_name: str) -> Settings:
    return TINY if model_name in models.TINY_MODELS else VIT_B32


@dataclass
class Result:
    method: str
    shots: int
    accuracy: float
    trainable: int
    seconds: float
    steps: int
    module: nn.Module | None = None


def class_text_features(model: nn.Module, tokenizer, classnames: list[str], template: str) -> torch.Tensor:
    """Normalised features of ``template.format(name)`` for every class."""
    return encode_texts(model, tokenizer, [template.format(c) for c in classnames])


def _image_features(model, images, batch=256):
    device = next(model.parameters()).device
    with torch.no_grad():
        return F.normalize(torch.cat([model.encode_image(images[i:i + batch].to(device))
                                      for i in range(0, len(images), batch)]), dim=-1)


class LinearProbe(nn.Module):
    def __init__(self, init: torch.Tensor, scale: float):
        super().__init__()
        self.head = nn.Linear(init.shape[1], init.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(init * scale)
            self.head.bias.zero_()

    def forward(self, features):
        return self.head(features)


class TextHeadClassifier(nn.Module):
    """Image features against the class prompts' text features, both computed by a
    (partly) trainable CLIP: what LoRA and full fine-tuning train."""

    def __init__(self, clip: nn.Module, tokenizer, classnames, template):
        super().__init__()
        self.clip = clip
        self.register_buffer("ids", tokenizer([template.format(c) for c in classnames]), persistent=False)

    def forward(self, images):
        img = F.normalize(self.clip.encode_image(images), dim=-1)
        txt = F.normalize(self.clip.encode_text(self.ids), dim=-1)
        return self.clip.logit_scale.exp() * img @ txt.t()


def build(method: str, clip: nn.Module, tokenizer, classnames: list[str], template: str,
          settings: Settings) -> nn.Module:
    """The module that method ``method`` trains, around a *copy* of ``clip``."""
    clip = copy.deepcopy(clip)
    if method == "CoOp":
        init = settings.coop_init
        return coop.CoOp(clip, tokenizer, classnames, n_ctx=settings.coop_n_ctx, init=init)
    if method == "VPT-deep":
        with torch.no_grad():
            cls = class_text_features(clip, tokenizer, classnames, template)
        return vpt.DeepVisualPrompts(clip, settings.vpt_prompts, class_features=cls)
    if method == "LoRA":
        lora.add_lora(clip, rank=settings.lora_rank)
        return TextHeadClassifier(clip, tokenizer, classnames, template)
    if method == "full fine-tune":
        models.unfreeze(clip)
        clip.logit_scale.requires_grad_(False)
        return TextHeadClassifier(clip, tokenizer, classnames, template)
    raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")


def adapt(method: str, clip: nn.Module, tokenizer, task, shots: int, settings: Settings | None = None,
          epochs: int = 40, min_steps: int = 40, test: tuple | None = None, seed: int = 0,
          progress: bool = False, keep: bool = False) -> Result:
    """Train ``method`` on ``shots`` examples per class of ``task`` and return its test
    accuracy, trainable parameters and training time."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    settings = settings or TINY
    device = next(clip.parameters()).device
    x_test, y_test = test if test is not None else task.test_set()
    x_train, y_train = task.train_set(shots)
    y_test = y_test.to(device)
    train.seed_everything(seed)
    start = time.perf_counter()
    scale = clip.logit_scale.exp().item()

    if method == "zero-shot":
        with torch.no_grad():
            cls = class_text_features(clip, tokenizer, task.classnames, task.template)
            acc = (_image_features(clip, x_test) @ cls.t()).argmax(1).eq(y_test).float().mean().item()
        return Result(method, shots, acc, 0, time.perf_counter() - start, 0)

    steps = max(min_steps, epochs * math.ceil(len(x_train) / settings.batch_size))
    config = train.TrainConfig(steps=steps, lr=settings.lr[method], weight_decay=settings.weight_decay,
                               warmup=min(10, steps // 10), progress=progress, description=f"{method}, {shots} shots")

    def batches(step):
        g = torch.Generator().manual_seed(seed * 100_003 + step)
        idx = torch.randperm(len(x_train), generator=g)[: settings.batch_size]
        return x_train[idx].to(device), y_train[idx].to(device)

    if method == "linear probe":
        with torch.no_grad():
            cls = class_text_features(clip, tokenizer, task.classnames, task.template)
            f_train, f_test = _image_features(clip, x_train), _image_features(clip, x_test)
        module = LinearProbe(cls, scale).to(device)

        def loss_fn(batch):  # full batch: the features of every shot
            return F.cross_entropy(module(f_train), y_train.to(device))

        history = train.fit(module, loss_fn, batches, config, device=device)
        with torch.no_grad():
            acc = module(f_test).argmax(1).eq(y_test).float().mean().item()
    else:
        module = build(method, clip, tokenizer, task.classnames, task.template, settings).to(device)
        history = train.fit(module, lambda b: F.cross_entropy(module(b[0]), b[1]), batches, config, device=device)
        with torch.no_grad():
            preds = torch.cat([module(x_test[i:i + 256].to(device)).argmax(1) for i in range(0, len(x_test), 256)])
        acc = preds.eq(y_test).float().mean().item()
    trainable = models.count_parameters(module).trainable
    return Result(method, shots, acc, trainable, time.perf_counter() - start, history.steps, module if keep else None)


def trainable_parameters(model_name: str, n_classes: int = 10, settings: Settings | None = None) -> dict[str, int]:
    """Trainable parameters of every method on ``model_name`` (random weights: no download)."""
    settings = settings or settings_for(model_name)
    clip, _, tokenizer = models.load_clip(model_name)
    names = [f"class {i}" for i in range(n_classes)]
    out = {"zero-shot": 0, "linear probe": (clip.text_projection.shape[1] + 1) * n_classes}
    for method in ("CoOp", "VPT-deep", "LoRA", "full fine-tune"):
        out[method] = models.count_parameters(build(method, clip, tokenizer, names, "a photo of a {}.", settings)).trainable
    return out
