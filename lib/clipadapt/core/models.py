"""Loading CLIP models, freezing them, and counting what trains.

:func:`load_clip` is the one factory. It builds any open_clip architecture (``ViT-B-32``,
``ViT-B-16``, ``RN50``, ...) and the tiny configurations kept as JSON in
``model_configs/`` beside this module, with or without pre-trained weights:

* ``pretrained=None`` -- random initialisation (no download; used to study architectures);
* ``pretrained="openai"`` and the other open_clip tags -- downloaded by open_clip;
* ``pretrained="synthetic"`` -- for the tiny configurations, the weights pre-trained on
  the synthetic image world, shipped with the package (see :mod:`clipadapt.pretrain`);
* ``pretrained="random-file"`` -- the architecture's random initialisation (seed 0), written
  once to a file under the data root and loaded from it by open_clip as downloaded weights
  are, into the model the ``openai`` tag builds (the ``colab-smoke`` profile: the ``colab``
  code path without the download);
* ``weights_file=`` with a tag -- a local copy of that tag's weights (what open_clip would
  download), loaded into the model the tag builds.

A tag builds the model its weights were trained in: open_clip records, per architecture and
tag, the activation (OpenAI trained every CLIP with QuickGELU, ``x * sigmoid(1.702 x)``,
where open_clip's configs default to GELU) and the evaluation transform; :func:`tag_config`
reads that record, and every weight load above goes through it. ``pretrained=None`` keeps
open_clip's stock configuration (random weights have no activation of their own).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
from safetensors.torch import save_file
from torch import nn

from .checkpoints import load_checkpoint
from .files import atomic_path, data_root

CONFIG_DIR = Path(__file__).parents[1] / "model_configs"
WEIGHTS_DIR = Path(__file__).parents[1] / "weights"
TINY_MODELS = tuple(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))
SYNTHETIC = "synthetic"
RANDOM_FILE = "random-file"
OPENAI = "openai"

open_clip.add_model_config(CONFIG_DIR)


class WeightsUnavailableError(RuntimeError):
    """Pre-trained weights could not be loaded (no network, no cache, no file)."""


@contextlib.contextmanager
def _quiet_open_clip():
    """open_clip warns on the root logger that no weights were loaded when asked for a
    random model; that is what we asked for, so keep it out of the book."""

    class _Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "No pretrained weights loaded" not in record.getMessage()

    root = logging.getLogger()
    flt = _Drop()
    root.addFilter(flt)
    handlers = list(root.handlers)
    for h in handlers:
        h.addFilter(flt)
    try:
        yield
    finally:
        root.removeFilter(flt)
        for h in handlers:
            h.removeFilter(flt)


def weights_path(name: str) -> Path:
    """Where the shipped synthetic-world weights of tiny model ``name`` live."""
    return WEIGHTS_DIR / f"{name}.safetensors"


def random_weights_file(name: str, seed: int = 0) -> Path:
    """A file of random weights for architecture ``name`` (float16, safetensors), written
    once under the data root and reused."""
    path = data_root() / "weights" / f"{name}-random-seed{seed}.safetensors"
    if not path.is_file():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            with _quiet_open_clip():
                model = open_clip.create_model(name, pretrained=None)
        state = {k: v.detach().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous()
                 for k, v in model.state_dict().items()}
        with atomic_path(path, suffix=".safetensors") as tmp:
            save_file(state, str(tmp), metadata={"architecture": name, "seed": str(seed), "weights": "random"})
    return path


def tag_config(name: str, pretrained: str | None) -> dict:
    """open_clip's record of the weights ``pretrained`` names for architecture ``name``:
    ``quick_gelu`` (the activation they were trained with), ``mean``, ``std``,
    ``interpolation``, ``resize_mode`` (their evaluation transform). ``random-file`` stands
    for the ``openai`` tag, as colab-smoke stands for colab; ``{}`` for no tag (``None``,
    ``synthetic``, the tiny models, a file path)."""
    tag = OPENAI if pretrained == RANDOM_FILE else pretrained
    if not tag or tag == SYNTHETIC or name in TINY_MODELS:
        return {}
    cfg = dict(open_clip.get_pretrained_cfg(name, tag))
    if tag == OPENAI and cfg:  # OpenAI's clip/model.py: QuickGELU in every model; older records omit the key
        cfg.setdefault("quick_gelu", True)
    return cfg


def _from_file(name: str, path: str | Path, cfg: dict, device) -> nn.Module:
    """``name`` built as ``cfg`` says and loaded from ``path`` by open_clip's checkpoint
    loader (the function that reads downloaded weights)."""
    if not Path(path).is_file():
        raise WeightsUnavailableError(f"no weights file at {path} for {name!r}")
    try:
        with _quiet_open_clip():
            model = open_clip.create_model(name, pretrained=str(path), device=device,
                                           force_quick_gelu=bool(cfg.get("quick_gelu", False)))
    except Exception as err:  # torch.load, safetensors and load_state_dict fail in many types
        raise WeightsUnavailableError(
            f"could not load {path} into {name!r} ({type(err).__name__}: {str(err)[:300]}); expected a state dict "
            f"(.pt/.bin or .safetensors) with the architecture's key names, as open_clip downloads them") from err
    return model.eval()


def create(name: str, pretrained: str | None = None, device: str | torch.device = "cpu",
           weights_file: str | Path | None = None) -> nn.Module:
    """Build the open_clip model ``name``; see :func:`load_clip` for ``pretrained`` and
    ``weights_file``."""
    if name not in open_clip.list_models():
        raise ValueError(
            f"unknown model {name!r}; open_clip architectures and the tiny configs are: "
            f"{', '.join(TINY_MODELS)}, {', '.join(m for m in open_clip.list_models() if m.startswith(('ViT-B', 'RN50')))}, ..."
        )
    if pretrained == SYNTHETIC:
        if name not in TINY_MODELS:
            raise ValueError(f"pretrained={SYNTHETIC!r} exists only for the tiny models {TINY_MODELS}, not {name!r}")
        with _quiet_open_clip():
            model = open_clip.create_model(name, pretrained=None)
        path = weights_path(name)
        if not path.exists():
            raise WeightsUnavailableError(
                f"the synthetic-world weights of {name!r} are missing: expected {path}. "
                f"Make them with `python -m clipadapt.pretrain` (about two minutes on a CPU)."
            )
        load_checkpoint(model, path)
        return model.to(device).eval()
    cfg = tag_config(name, pretrained)
    if weights_file is not None:
        if not cfg:
            raise ValueError(f"weights_file needs the tag whose weights it holds (e.g. {OPENAI!r}) to build "
                             f"{name!r} as they were trained; got pretrained={pretrained!r}")
        return _from_file(name, weights_file, cfg, device)
    if pretrained == RANDOM_FILE:
        return _from_file(name, random_weights_file(name), cfg, device)
    if pretrained is None:
        with _quiet_open_clip():
            return open_clip.create_model(name, pretrained=None, device=device).eval()
    try:
        with _quiet_open_clip():
            model = open_clip.create_model(name, pretrained=pretrained, device=device,
                                           force_quick_gelu=bool(cfg.get("quick_gelu", False)))
    except Exception as err:  # network, hub or cache failures come in many types
        raise WeightsUnavailableError(
            f"could not load the {pretrained!r} weights of {name!r} ({type(err).__name__}: {err}). "
            f"They are downloaded from the internet on first use; without a connection, use the "
            f"'tiny' profile, which runs on the tiny CLIP shipped with clipadapt."
        ) from err
    return model.eval()


def load_clip(name: str, pretrained: str | None = None, device: str | torch.device = "cpu",
              weights_file: str | Path | None = None):
    """Return ``(model, preprocess, tokenizer)`` for open_clip model ``name``.

    ``pretrained`` is a tag (``"openai"``), ``"synthetic"``, ``"random-file"`` or ``None``
    (see the module's notes); ``weights_file``, with a tag, is a local copy of that tag's
    weights. ``preprocess`` is the evaluation transform the weights were trained with
    (PIL image -> tensor; open_clip's defaults without a tag); ``tokenizer`` maps strings to
    token ids of the model's context length.
    """
    model = create(name, pretrained, device, weights_file=weights_file)
    cfg = tag_config(name, pretrained)
    preprocess = open_clip.image_transform(
        model.visual.image_size,
        is_train=False,
        mean=cfg.get("mean") or getattr(model.visual, "image_mean", None),
        std=cfg.get("std") or getattr(model.visual, "image_std", None),
        interpolation=cfg.get("interpolation"),
        resize_mode=cfg.get("resize_mode"),
    )
    tokenizer = open_clip.get_tokenizer(name)
    return model, preprocess, tokenizer


# -- pixels in, features out ---------------------------------------------------------------
# CLIP's pixel normalisation lives with the data (clipadapt.core.pixels); it is re-exported
# here because notebooks and callers write models.normalize, models.MEAN and models.STD.
from .pixels import MEAN, STD, denormalize, normalize  # noqa: E402, F401


# -- freezing and counting -----------------------------------------------------------------
def freeze(module: nn.Module) -> nn.Module:
    """Stop gradients for every parameter of ``module``; returns it."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def unfreeze(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.requires_grad_(True)
    return module


@dataclass(frozen=True)
class ParameterCount:
    trainable: int
    total: int

    @property
    def fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.trainable:,} trainable of {self.total:,} ({100 * self.fraction:.3f}%)"


def count_parameters(module: nn.Module) -> ParameterCount:
    """Trainable and total parameters, each shared tensor counted once."""
    seen, trainable, total = set(), 0, 0
    for p in module.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return ParameterCount(trainable, total)


def parameter_table(model: nn.Module, depth: int = 1) -> list[tuple[str, int, int]]:
    """Rows ``(name, trainable, total)`` for the sub-modules ``depth`` levels down, plus
    the parameters held directly by the modules above them (e.g. ``logit_scale``)."""
    rows: dict[str, list[int]] = {}
    for name, p in model.named_parameters():
        key = ".".join(name.split(".")[:depth])
        row = rows.setdefault(key, [0, 0])
        row[1] += p.numel()
        row[0] += p.numel() if p.requires_grad else 0
    return [(k, v[0], v[1]) for k, v in rows.items()]


def clip_parameter_summary(model: nn.Module) -> list[dict]:
    """Rows ``{"part", "parameters", "trainable"}`` for a CLIP: the image encoder, the text
    encoder (and its token embedding), the temperature, and the total."""
    def count(params):
        params = list(params)
        return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)

    named = dict(model.named_parameters())
    visual = [p for n, p in named.items() if n.startswith("visual.")]
    scale = [p for n, p in named.items() if n in ("logit_scale", "logit_bias")]
    text = [p for n, p in named.items() if not n.startswith("visual.") and n not in ("logit_scale", "logit_bias")]
    tokens = [p for n, p in named.items() if n.startswith("token_embedding")]
    rows = []
    for part, params in (("image encoder", visual), ("text encoder", text),
                         ("text encoder: token embedding (included above)", tokens), ("temperature", scale)):
        n, t = count(params)
        rows.append({"part": part, "parameters": n, "trainable": t})
    n, t = count(named.values())
    rows.append({"part": "total", "parameters": n, "trainable": t})
    return rows
