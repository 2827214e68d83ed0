"""Run profiles: one name decides the model, the data and the budget of a chapter.

* ``tiny``  -- CPU, synthetic worlds, the tiny CLIP pre-trained on them (what CI runs);
* ``colab`` -- one GPU, CLIP ViT-B/32 with OpenAI weights, real-data subsets;
* ``paper`` -- the papers' hyper-parameters on the full datasets;
* ``colab-smoke`` -- the ``colab`` profile's code paths (ViT-B/32, EuroSAT and MSR-VTT in
  their real formats) on the CPU in minutes: random ViT-B/32 weights read
  from a local file instead of the download, miniature datasets
  (:mod:`clipadapt.data.fixtures`; General-10's four colab datasets, 3 classes of each read),
  a handful of steps. CI executes every chapter under it.

A notebook's ``parameters`` cell sets ``profile``; ``None`` there means "ask the
environment": the ``CLIPADAPT_PROFILE`` variable, else ``colab`` when a GPU is found
and ``tiny`` otherwise (see :func:`default_name`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch

ENV_VAR = "CLIPADAPT_PROFILE"


@dataclass(frozen=True)
class Profile:
    """What every chapter shares under one profile. What a chapter's runs are made of lives
    with its experiments (:mod:`clipadapt.experiments.settings`: data, pre-training) and its
    training budgets with the recipes (``clipadapt/recipes/_shared.toml``), both per profile."""

    name: str
    description: str
    clip_model: str  # the CLIP the adaptation chapters start from (an open_clip name, or tiny-clip)
    clip_pretrained: str  # its weights
    device: str  # "cpu" or "cuda"
    video_frames: int = 8  # frames per video (Part II)
    video_size: int = 64  # frames are written and read at this size (the CLIP's input size)
    # the profile this one is built from: the data files' entries of that profile are read
    # first, this one's changes over them (colab-smoke is colab's at CI scale)
    based_on: str | None = None

    def replace(self, **changes) -> "Profile":
        return dataclasses.replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        description="CPU; synthetic worlds and the tiny CLIP pre-trained on them (runs in minutes on 2 cores)",
        clip_model="tiny-clip",
        clip_pretrained="synthetic",
        device="cpu",
    ),
    "colab": Profile(
        name="colab",
        description="one GPU; CLIP ViT-B/32 with OpenAI weights and real-data subsets",
        clip_model="ViT-B-32",
        clip_pretrained="openai",
        device="cuda",
        video_frames=12,
        video_size=224,
    ),
    "paper": Profile(
        name="paper",
        description="the papers' hyper-parameters on the full datasets (several GPU-hours per method)",
        clip_model="ViT-B-32",
        clip_pretrained="openai",
        device="cuda",
        video_frames=12,
        video_size=224,
    ),
}


# The colab profile's code paths at the scale of a CI machine: ViT-B/32 with random weights
# loaded from a file ("random-file", see models.create), the colab profile's real-format data
# (miniature copies written by clipadapt.data.fixtures into $CLIPADAPT_DATA), a few steps (its
# entries in the data files change colab's). It keeps colab's 12 frames: TempMe's ViT-B/32
# schedule joins 12 clips (2, then 2, then 3).
PROFILES["colab-smoke"] = PROFILES["colab"].replace(
    name="colab-smoke",
    description="CI: the colab profile's code paths on the CPU (random ViT-B/32 weights from a local file, "
                "miniature EuroSAT and MSR-VTT in their real formats, a handful of steps)",
    clip_pretrained="random-file",
    device="cpu",
    based_on="colab",
)


class UnknownProfileError(ValueError):
    pass


def default_name() -> str:
    """The profile used when a notebook does not name one."""
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    return "colab" if torch.cuda.is_available() else "tiny"


def get(name: str | Profile | None = None) -> Profile:
    """Return the profile called ``name`` (``None``: :func:`default_name`)."""
    if isinstance(name, Profile):
        return name
    if name is None or name == "":
        name = default_name()
    key = str(name).strip().lower()
    if key not in PROFILES:
        choices = ", ".join(sorted(PROFILES))
        raise UnknownProfileError(
            f"unknown profile {name!r}; choose one of: {choices} "
            f"(set it in the notebook's parameters cell or with {ENV_VAR}=...)"
        )
    return PROFILES[key]


def lineage(profile: Profile) -> list[str]:
    """The names whose entries ``profile`` reads in the data files, first to last: the profiles
    it is built from (``based_on``, followed through :data:`PROFILES`), then its own name."""
    names, base = [profile.name], profile.based_on
    while base is not None and base not in names:
        names.insert(0, base)
        base = PROFILES[base].based_on if base in PROFILES else None
    return names


def merged(tables: dict, profile: Profile) -> dict | None:
    """``profile``'s entry of a data file's per-profile ``tables``: ``all`` first, then the
    entries of its :func:`lineage`, key by key; None when no name of its lineage has one."""
    names = lineage(profile)
    if not any(n in tables for n in names):
        return None
    out = dict(tables.get("all", {}))
    for n in names:
        out.update(tables.get(n, {}))
    return out


def need(profile) -> Profile:
    """``profile`` itself: library functions take a resolved profile, which the entry points
    (a chapter's setup, reproduce, bench, book) make with :func:`get` and pass down."""
    if not isinstance(profile, Profile):
        raise TypeError(f"expected a Profile (clipadapt.profiles.get({profile!r}) resolves a name), got {profile!r}")
    return profile



def pick_device(device: str | None = None) -> torch.device:
    """``"cuda"`` when asked for and available, else the CPU. ``None``: the best there is."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(device)
