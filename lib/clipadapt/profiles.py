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
class PretrainRecipe:
    """How the tiny CLIP of chapter 1 is pre-trained on the synthetic image world."""

    steps: int = 1200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 50
    seed: int = 0
    p_two_objects: float = 0.2
    # open_clip draws the image encoder's positional embedding with std width**-0.5, small
    # beside the patch embeddings; at that scale a short run never learns left from right
    # (measured: a supervised position probe stays at chance for 120 steps, and reaches 99%
    # with the embedding drawn 8 times larger). Pre-training starts from the larger draw.
    pos_embed_scale: float = 8.0


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    # the CLIP that the adaptation chapters start from
    clip_model: str
    clip_pretrained: str
    # chapter 1: the tiny CLIP pre-trained from scratch, and how it is evaluated
    pretrain: PretrainRecipe
    live_pretrain_steps: int  # how far chapter 1 trains in front of the reader
    eval_images: int
    retrieval_pairs: int
    device: str  # "cpu" or "cuda"
    # chapter 2: few-shot adaptation
    fewshot_task: str = "outlines"  # a synthetic task of clipadapt.data.fewshot, or a CoOp-format dataset
    fewshot_shots: tuple[int, ...] = (1, 2, 4, 8, 16)
    fewshot_epochs: int = 40  # passes over the k-shot training set (at least fewshot_min_steps steps)
    fewshot_min_steps: int = 40
    fewshot_test_per_class: int | None = 100  # None: the whole test split
    # Part II: text-video retrieval
    video_data: str = "synthetic"  # "synthetic" (the video world), "msrvtt", or a name of video_sets.BENCHMARKS
    video_check_sizes: bool = True  # real data: compare each split's size with the published one
    video_test_all: bool = False  # benchmarks other than MSR-VTT: test on the whole test split
    video_frames: int = 8
    # benchmarks of long videos (ActivityNet Captions, DiDeMo): a method samples its own
    # frame count there where its paper does (registry.MethodSpec.long_video_frames: TempMe's 64)
    video_long_frames: bool = False
    video_size: int = 64  # frames are written and read at this size (the CLIP's input size)
    video_train_pairs: int = 60  # synthetic: videos, each with its reversal twin; msrvtt: caption pairs
    video_test_pairs: int = 20
    # synthetic: one-attribute variants (colour, shape, size) of each test video, with their twins,
    # so that the test set holds distractors that differ by one word (msrvtt: unused)
    video_test_near_misses: int = 5
    video_steps: int = 60
    video_batch: int = 16
    # chapter 8: at most this many training steps for every run on the map (None: each recipe's own)
    map_steps: int | None = None
    # Part III, chapter 6: the multi-label scene world (images at the CLIP's input size), the
    # steps of one SCPNet run and the seeds its ablation averages over
    multilabel_train: int = 400
    multilabel_test: int = 1000
    multilabel_steps: int = 100
    multilabel_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # chapter 6 pairs its arms over these seeds
    # chapter 7: SoftCPT's suite (the synthetic world where fewshot_task is synthetic; otherwise
    # datasets of General-10, clipadapt.data.multitask.GENERAL10, fetched into the data root)
    multitask_datasets: tuple[str, ...] = ()  # General-10 folders (empty: all ten)
    multitask_classes: int | None = None  # keep each dataset's first classes only (None: all)
    multitask_seeds: tuple[int, ...] = (1, 2, 3)  # the paper's
    multitask_steps: int | None = None  # joint steps per run (None: the paper's 50 epochs, at least 200)

    def replace(self, **changes) -> "Profile":
        return dataclasses.replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        description="CPU; synthetic worlds and the tiny CLIP pre-trained on them (runs in minutes on 2 cores)",
        clip_model="tiny-clip",
        clip_pretrained="synthetic",
        pretrain=PretrainRecipe(),
        live_pretrain_steps=300,
        eval_images=1000,
        retrieval_pairs=200,
        device="cpu",
        multitask_seeds=(0, 1, 2, 3, 4),  # chapter 7 pairs its arms over 5 seeds
        # chapter 8 trains sixteen runs within its 180 s: 24 steps each, the same for all
        # (a fifth of chapter 2's 120, two fifths of chapter 3's 60, a fifth of VoP's 120)
        map_steps=24,
    ),
    "colab": Profile(
        name="colab",
        description="one GPU; CLIP ViT-B/32 with OpenAI weights and real-data subsets",
        clip_model="ViT-B-32",
        clip_pretrained="openai",
        pretrain=PretrainRecipe(steps=3000),
        live_pretrain_steps=3000,
        eval_images=5000,
        retrieval_pairs=300,
        device="cuda",
        fewshot_task="eurosat",
        fewshot_epochs=50,
        fewshot_min_steps=100,
        fewshot_test_per_class=200,
        video_data="msrvtt",
        video_frames=12,
        video_size=224,
        # sized for one T4 session (tools/colab_estimate.py): 150 steps of 32 pairs see 4,800
        # of the 9k split's 180k pairs once; chapter 4 (six VoP variants at twice the steps)
        # is then about 40 minutes of compute
        video_train_pairs=4800,
        video_test_pairs=1000,
        video_steps=150,
        video_batch=32,
        multilabel_train=2000,
        multilabel_test=2000,
        multilabel_steps=300,
        multilabel_seeds=(0, 1, 2, 3, 4),
        # General-10's four datasets with torchvision's checked archives, about 1.1 GB in all
        # (Caltech-101, DTD, EuroSAT, Flowers-102: 259 classes); one seed and 100 joint steps
        # per run make chapter 7 about 20 minutes of T4 compute (tools/colab_estimate.py)
        multitask_datasets=("caltech-101", "dtd", "eurosat", "oxford_flowers"),
        multitask_seeds=(1,),
        multitask_steps=100,
    ),
    "paper": Profile(
        name="paper",
        description="the papers' hyper-parameters on the full datasets (several GPU-hours per method)",
        clip_model="ViT-B-32",
        clip_pretrained="openai",
        pretrain=PretrainRecipe(steps=5000),
        live_pretrain_steps=5000,
        eval_images=10000,
        retrieval_pairs=300,
        device="cuda",
        fewshot_task="eurosat",
        fewshot_epochs=200,
        fewshot_min_steps=200,
        fewshot_test_per_class=None,
        video_data="msrvtt",
        video_frames=12,
        video_size=224,
        video_train_pairs=180000,
        video_test_pairs=1000,
        video_long_frames=True,
        video_steps=28000,  # 5 epochs of the 9k split's 180k pairs at batch 32 (other benchmarks: their own 5 epochs)
        video_batch=32,
        video_test_all=True,
        multilabel_train=10000,
        multilabel_test=5000,
        multilabel_steps=3000,
        multilabel_seeds=(0, 1, 2, 3, 4),
    ),
}


# The colab profile's code paths at the scale of a CI machine: ViT-B/32 with random weights
# loaded from a file ("random-file", see models.create), the colab profile's real-format data
# (miniature copies written by clipadapt.data.fixtures into $CLIPADAPT_DATA), a few steps.
PROFILES["colab-smoke"] = PROFILES["colab"].replace(
    name="colab-smoke",
    description="CI: the colab profile's code paths on the CPU (random ViT-B/32 weights from a local file, "
                "miniature EuroSAT and MSR-VTT in their real formats, a handful of steps)",
    clip_pretrained="random-file",
    pretrain=PretrainRecipe(steps=4, batch_size=32, warmup=1),
    live_pretrain_steps=4,
    eval_images=60,
    retrieval_pairs=24,
    device="cpu",
    fewshot_shots=(1,),
    fewshot_epochs=1,
    fewshot_min_steps=2,
    fewshot_test_per_class=1,
    # the colab profile's 12 frames (TempMe's ViT-B/32 schedule joins 12 clips: 2, then 2, then 3);
    # one step of 2 pairs (24 frames) per run keeps Part II's training cost at that of two 4-frame
    # batches of 3; chapter 3 shows 4 test videos
    video_train_pairs=4,
    video_test_pairs=4,
    video_check_sizes=False,  # miniature copies
    video_steps=1,
    video_batch=2,
    # the colab profile's four General-10 datasets in their real formats, 3 classes of each read
    multitask_classes=3,
    multitask_steps=1,
    multilabel_train=32,
    multilabel_test=32,
    multilabel_steps=2,
    multilabel_seeds=(0,),
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



def pick_device(device: str | None = None) -> torch.device:
    """``"cuda"`` when asked for and available, else the CPU. ``None``: the best there is."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(device)
