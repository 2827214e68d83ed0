"""The papers' recipes as their official code runs them, each value with its source.

:data:`OFFICIAL` maps a method (and variant) to an :class:`~clipadapt.training.recipes.Recipe`
that holds the official values and, in ``sources``, where each one is written: a paper's
section, or an official repository's file and line (snapshots read for this table:
KaiyangZhou/CoOp @ ff61507, kding1225/softcpt @ 7cab4b9 with its bundled Dassl,
jameslahm/SCPNet @ d56341a, LunarShen/TempMe @ e624930, KMnP/vpt @ 4410440,
MaxZanella/CLIP-LoRA @ 358f0d7, ArrowLuo/CLIP4Clip @ 508ffa3). Where the official code
has no value (VoP's learning rates were searched and never published), the value is
``None`` and the source says so. :mod:`clipadapt.training.recipes` builds each profile's rows
from these, and every change carries its reason.

``NOTES`` lists what a method's official code does that no recipe field holds; the recipe
card prints them. ``BACKBONE`` is the CLIP each paper's numbers come from.
"""

from __future__ import annotations

from .recipe import Recipe, every

COOP = "KaiyangZhou/CoOp"
DASSL = "kding1225/softcpt dist/Dassl.pytorch/dassl"
SOFTCPT = "kding1225/softcpt"
SCP = "jameslahm/SCPNet"
TEMPME = "LunarShen/TempMe"
VPT = "KMnP/vpt"
LORA = "MaxZanella/CLIP-LoRA"
C4C = "ArrowLuo/CLIP4Clip"
VOP = "VoP paper (Huang et al., CVPR 2023) §4.1"

_NONE = "nothing trains: the class prompts' text features (CLIP, Radford et al. 2021, §3.1.2)"

# -- Part I: few-shot classification --------------------------------------------------------
_coop_sgd = dict(optimizer="sgd", optimizer_kwargs={"momentum": 0.9}, decay_rule="all", lr=0.002,
                 weight_decay=5e-4, schedule="cosine", schedule_unit="epoch", cosine_span="whole run",
                 warmup=1, warmup_kind="constant", warmup_lr=1e-5, batch_size=32, augment="crop-flip",
                 cache_features=False, precision="fp16", grad_clip=None)


def _coop_sources(cfg: str, epochs: str, prec: str) -> dict[str, str]:
    return {
        "optimizer": f"{cfg}:16 (sgd); momentum 0.9: {DASSL}/config/defaults.py:159; one group, all decay: "
                     f"{COOP} trainers/coop.py:246",
        "lr": f"{cfg}:17",
        "weight_decay": f"{DASSL}/config/defaults.py:158",
        "schedule": f"{cfg}:19 (cosine); CosineAnnealingLR(MAX_EPOCH) after the warm-up, recounted: "
                    f"{DASSL}/optim/lr_scheduler.py:130-143, defaults.py:188; stepped once per epoch: "
                    f"{COOP} trainers/coop.py:281-282",
        "warmup": f"{cfg}:20-22 (1 epoch, constant 1e-5); {DASSL}/optim/lr_scheduler.py:35-54",
        "budget": epochs,
        "batch_size": f"{cfg}:3",
        "augment": f"{cfg}:13 (random_resized_crop, random_flip), :10 bicubic; crop scale (0.08, 1): "
                   f"{DASSL}/config/defaults.py:40; a fresh draw per step (Dassl's train loader)",
        "precision": prec,
        "grad_clip": f"none: {COOP} trainers/coop.py:260-276 steps without clipping",
    }


_COOP_CFG = f"{COOP} configs/trainers/CoOp/vit_b32.yaml"
_COOP_SRC = _coop_sources(_COOP_CFG, f"{_COOP_CFG}:18 (200 epochs: 8 and 16 shots; 1 shot 50, 2-4 shots 100: "
                                     f"{COOP} COOP.md:18-20)", f"{COOP} train.py:94 (PREC fp16)")

_lp = Recipe(optimizer="lbfgs", lr=None, full_batch=True, epochs=1, batch_size=0, augment="none",
             schedule="none", warmup_kind="none", decay_rule="all",
             cache_features=True, precision="fp32", sources={
                 "optimizer": f"{COOP} lpclip/linear_probe.py:57 (sklearn LogisticRegression, lbfgs, max_iter 1000)",
                 "lr": "none: L-BFGS with a line search", "weight_decay": f"L2 with C searched over 1e6..1e-6, "
                 f"then a binary search on the validation split: {COOP} lpclip/linear_probe.py:53-75",
                 "schedule": "none (L-BFGS)", "warmup": "none (L-BFGS)", "budget": f"{COOP} lpclip/linear_probe.py:57 "
                 "(max_iter 1000 on the whole training set)", "batch_size": "the whole training set",
                 "augment": f"none: features extracted once with the test transform, {COOP} "
                            "lpclip/feat_extractor.py:131",
                 "precision": "features in CLIP's own precision; sklearn in float64", "grad_clip": "none"})

_VPT_BASE = f"{VPT} configs/base-prompt.yaml"
_vpt = Recipe(optimizer="sgd", optimizer_kwargs={"momentum": 0.9}, decay_rule="all", lr=0.1, weight_decay=0.01,
              schedule="cosine", schedule_unit="epoch", warmup=10, warmup_kind="linear", epochs=100, batch_size=128,
              augment="resize-crop-flip", cache_features=False, precision="fp32", grad_clip=None,
              options={"prompts": 8}, sources={
                  "optimizer": f"{_VPT_BASE}:14-15; WEIGHT_DECAY_BIAS 0: {VPT} src/configs/config.py:93",
                  "lr": f"{VPT} configs/prompt/cub.yaml:11 (0.1; each dataset's rate from a grid search)",
                  "weight_decay": f"{VPT} configs/prompt/cub.yaml:12",
                  "schedule": f"{_VPT_BASE}:11 (cosine), {VPT} src/solver/lr_scheduler.py:56-64, stepped once "
                              f"per epoch: src/engine/trainer.py:156-221",
                  "warmup": f"{_VPT_BASE}:18 (10 epochs, linear from 0: src/solver/lr_scheduler.py:57-58)",
                  "budget": f"{_VPT_BASE}:19", "batch_size": f"{_VPT_BASE}:25",
                  "augment": f"{VPT} src/data/transforms.py:20-31 (Resize 256, RandomCrop 224, flip)",
                  "precision": f"fp32: {VPT} src/engine/trainer.py has no autocast",
                  "grad_clip": f"none: {VPT} src/engine/trainer.py",
                  "options.prompts": "VPT-deep's prompt length is chosen per dataset (VPT §4); 8 is VoP's P^v, "
                                     "the same deep visual prompts of chapter 4 (VoP §4.1)"})

_LORA_MAIN = f"{LORA} lora.py"
_lora = Recipe(optimizer="adamw", optimizer_kwargs={"betas": (0.9, 0.999)}, decay_rule="all", lr=2e-4,
               weight_decay=1e-2, schedule="cosine", min_lr=1e-6, warmup=0, warmup_kind="none", steps=8000,
               batch_size=32, augment="crop-flip", cache_features=False, precision="amp", grad_clip=None,
               options={"rank": 2}, sources={
                   "optimizer": f"{_LORA_MAIN}:75 (AdamW over the LoRA parameters only)",
                   "lr": f"{LORA} run_utils.py:28", "weight_decay": f"{_LORA_MAIN}:75",
                   "schedule": f"{_LORA_MAIN}:76 (CosineAnnealingLR over every iteration, eta_min 1e-6), "
                               f"stepped per iteration :122",
                   "warmup": f"none: {_LORA_MAIN}:75-76", "budget": f"500 iterations per shot: {_LORA_MAIN}:73, "
                   f"run_utils.py:29 (16 shots: 8000)", "batch_size": f"{LORA} run_utils.py:30",
                   "augment": f"{LORA} main.py:38-42 (RandomResizedCrop 224, scale (0.08, 1), bicubic; flip)",
                   "precision": f"fp16 autocast with a GradScaler: {_LORA_MAIN}:82-108",
                   "grad_clip": f"none: {_LORA_MAIN}:85-122",
                   "options.rank": f"{LORA} run_utils.py:35 (r = 2, alpha 1, on q, k, v of both encoders)"})

# Full fine-tuning: the CoOp and CLIP-LoRA papers give no recipe of their own for it; the
# nearest official one fine-tunes the whole CLIP with CLIP-LoRA's optimiser (CLIP-LoRA §4
# compares against it), so the row follows CLIP-LoRA's code with every weight trainable.
_ft = _lora.replace(options={}, sources={
    **_lora.sources, "optimizer": f"{_LORA_MAIN}:75 with every weight trainable (no official few-shot recipe "
                                  "for full fine-tuning; CLIP-LoRA's optimiser is the nearest)"})

# -- Part II: text-video retrieval ----------------------------------------------------------
_VOP_SRC = {
    "optimizer": f"{VOP} (AdamW)", "lr": f"{VOP}: searched in [1e-6, 1e-2], the chosen rates are not published",
    "weight_decay": f"{VOP} (0.2)", "schedule": f"{VOP} (cosine decay)",
    "warmup": "not stated in VoP §4.1; 10% linear is X-Pool's default (layer6ai-labs/xpool "
              "config/all_config.py:46), the code base VoP names",
    "budget": f"{VOP} (5 epochs of MSR-VTT 9k)", "batch_size": f"{VOP} (32)",
    "augment": "not stated in VoP §4.1; X-Pool trains on RandomResizedCrop(224, scale (0.5, 1)) + flip "
               "(xpool datasets/model_transforms.py:4-19)",
    "precision": "not stated in VoP §4.1", "grad_clip": "not stated in VoP §4.1; X-Pool clips at 1.0 "
                                                        "(xpool trainer/trainer.py:61)"}
_vop = Recipe(optimizer="adamw", lr=None, weight_decay=0.2, schedule="cosine", warmup_kind="linear",
              warmup_fraction=0.1, epochs=5, batch_size=32, augment="crop-flip-video", cache_features=False,
              precision="fp32", grad_clip=1.0, options={"ks": 8},
              sources={**_VOP_SRC, "options.ks": f"{VOP} (K^s = 8 frame-level layers of 12)"})

_C4C = f"{C4C} README.md:99-111 (meanP, ViT-B/32)"
_c4c = Recipe(optimizer="adamw", optimizer_kwargs={"betas": (0.9, 0.98), "eps": 1e-6}, decay_rule="bias-and-1d",
              lr=1e-7, schedule="cosine", cosine_span="whole run", warmup_kind="linear", warmup_fraction=0.1,
              weight_decay=0.2, epochs=5, batch_size=128, augment="none", cache_features=False, precision="fp32",
              grad_clip=1.0, options={"rank": 8, "last_layers": 2}, sources={
                  "optimizer": f"BertAdam(b1 0.9, b2 0.98, e 1e-6), no decay on biases and LayerNorm: "
                               f"{C4C} main_task_retrieval.py:189-212",
                  "lr": f"CLIP's weights at lr x coef_lr = 1e-4 x 1e-3: {_C4C}, main_task_retrieval.py:202-205",
                  "weight_decay": f"{C4C} main_task_retrieval.py:200",
                  "schedule": f"warmup_cosine: cos over the whole run's progress, {C4C} main_task_retrieval.py:210",
                  "warmup": f"{C4C} main_task_retrieval.py:59 (10% of the steps, linear)",
                  "budget": _C4C, "batch_size": _C4C,
                  "augment": f"none: frames resized and centre-cropped, {C4C} dataloaders/rawvideo_util.py:17-19",
                  "precision": f"fp32 unless --fp16: {C4C} main_task_retrieval.py:68",
                  "grad_clip": f"{C4C} main_task_retrieval.py:212 (max_grad_norm 1.0)",
                  "options.rank": "unused by full fine-tuning", "options.last_layers": "unused by full fine-tuning"})

_TM = f"{TEMPME} main.py"
_tempme = Recipe(optimizer="adamw", optimizer_kwargs={"eps": 1e-6}, decay_rule="all", lr=6e-4, weight_decay=0.2,
                 schedule="cosine", warmup_kind="linear", warmup_fraction=0.1, epochs=5, batch_size=128,
                 augment="randaugment-video", cache_features=False, precision="fp32", grad_clip=1.0,
                 options={"rank": 8, "schedule": "ViT-B-32"}, sources={
                     "optimizer": f"{_TM}:205-209 (one group, every parameter decays); eps 1e-6: "
                                  f"{TEMPME} tvr/models/optimization_adamw.py:115",
                     "lr": f"{_TM}:46", "weight_decay": f"{_TM}:49",
                     "schedule": f"{_TM}:210-213, tvr/models/optimization_adamw.py:81-85, stepped per step :292",
                     "warmup": f"{_TM}:47-48 (10% of the steps, linear from 0)",
                     "budget": f"{_TM}:50 (5 epochs)", "batch_size": f"{_TM}:51 (128 over 4 GPUs)",
                     "augment": f"RandAugment rand-m7-n4-mstd0.5-inc1 on the frames: {TEMPME} "
                                f"tvr/dataloaders/dataloader_retrieval.py:86-90",
                     "precision": f"fp32: {_TM}:270-292 has no autocast", "grad_clip": f"{_TM}:287",
                     "options.rank": f"{_TM}:70 (lora_dim 8)",
                     "options.schedule": f"{_TM}:72-82 (tome_r 2, merge layers 8-9-10, frames 2-2-3, 30-10)"})
_tempme_full = _c4c.replace(options={"rank": 8, "schedule": "ViT-B-32"}, sources={
    **_c4c.sources, "options.rank": "unused by full fine-tuning",
    "options.schedule": f"{_TM}:72-82 (TempMe's merging schedule; its full fine-tuning runs on CLIP4Clip)"})

# -- Part III ---------------------------------------------------------------------------------
_SCP_CFG = f"{SCP} configs/scpnet+coco.yaml"
_scpnet = Recipe(optimizer="adam", decay_rule="bias-and-1d", lr=3e-5, group_lrs={"graph.": 1e-5}, weight_decay=1e-4,
                 schedule="onecycle", pct_start=0.2, schedule_length=80 / 60, warmup_kind="none", warmup=0,
                 epochs=60, batch_size=128, augment="weak-strong", cache_features=False, precision="amp",
                 grad_clip=None, options={"topk": 62, "temperature": 0.2, "loss": "splc", "hard_k": 2,
                                          "train_image_encoder": True, "ema_decay": 0.99969}, sources={
                     "optimizer": f"{SCP} train.py:79-83 (Adam, L2 decay on weights, none on biases and 1-D "
                                  "parameters: utils.py:309-341)",
                     "lr": f"{_SCP_CFG}:10 (lr), :18 (gcn_lr for the graph's own groups: train.py:80)",
                     "weight_decay": f"{SCP} configs/base.yaml:7",
                     "schedule": f"{SCP} train.py:85-90 (OneCycleLR, pct_start 0.2, over total_epochs 80 of which "
                                 f"60 run: {_SCP_CFG}:8-9), stepped per step :105",
                     "warmup": "none beyond OneCycle's rise (max_lr / 25 upwards over 20%)",
                     "budget": f"{_SCP_CFG}:8", "batch_size": f"{SCP} configs/base.yaml:4",
                     "augment": f"weak: flip then RandomResizedCrop(224) (scale (0.08, 1)), {SCP} scpnet.py:217-221; "
                                "strong: RandAugment(3, 5) with a cutout of up to 0.5, ahead of the weak transform, "
                                "scpnet.py:18-59, randaugment.py:146-169",
                     "precision": f"autocast + GradScaler: {SCP} scpnet.py:309, train.py:93-104",
                     "grad_clip": f"none: {SCP} train.py:101-105",
                     "options.topk": f"{_SCP_CFG}:16 (62 of COCO's 80 classes)",
                     "options.temperature": f"{_SCP_CFG}:15", "options.loss": f"{SCP} configs/base.yaml:5 (SPLC)",
                     "options.hard_k": f"{_SCP_CFG}:13",
                     "options.train_image_encoder": f"{SCP} scpnet.py:240-242 (only the text encoder is frozen)",
                     "options.ema_decay": f"{SCP} utils.py:343-360 (COCO: 0.82 per epoch of 641 steps)"})

_MT = f"{SOFTCPT} configs/trainers/MTCoOp/vit_b32_ep50.yaml"
_MTH = f"{SOFTCPT} configs/trainers/MTCoOpHard/vit_b32_ep50.yaml"


def _mt_sources(cfg: str, prec: str) -> dict[str, str]:
    src = _coop_sources(cfg, f"{cfg}:18 (50 epochs for every shot count)", prec)
    src["schedule"] = (f"{cfg}:19; {DASSL}/optim/lr_scheduler.py:130-143, stepped once per epoch: "
                       f"{SOFTCPT} trainers/mtcoop.py:791-792")
    src["augment"] = (f"{cfg}:13; the image encoder runs on every batch, {SOFTCPT} trainers/mtcoop.py:572 "
                      "(no cached features)")
    return src


_softcpt = Recipe(**_coop_sgd, epochs=50, options={"n_ctx": 16, "task_n_ctx": 4, "class_n_ctx": 4},
                  sources={**_mt_sources(_MT, f"{SOFTCPT} train.py:116 (PREC fp16)"),
                           "options.n_ctx": f"{SOFTCPT} README.md:59 (N_CTX 16)",
                           "options.task_n_ctx": f"{SOFTCPT} README.md:59 (TASK_N_CTX 4)",
                           "options.class_n_ctx": f"{SOFTCPT} README.md:59 (CLASS_N_CTX 0 for NATA; 4 where used)"})
_hard = Recipe(**_coop_sgd, epochs=50, options={"n_ctx": 16}, sources={
    **_mt_sources(_MTH, f"{SOFTCPT} train.py:108 (PREC fp16)"),
    "options.n_ctx": f"{SOFTCPT} README.md:30 (16), train.py:109"})
_lp_mt = _lp.replace(sources={k: v.replace(COOP, SOFTCPT).replace("linear_probe.py:57", "linear_probe.py:137")
                              .replace("linear_probe.py:53-75", "linear_probe.py:133-158")
                              .replace("feat_extractor.py:131", "feat_extractor.py:156") for k, v in _lp.sources.items()})

OFFICIAL: dict[str, dict[str | None, Recipe]] = {
    "zero-shot": {None: Recipe(steps=0, precision="fp16", sources=every(_NONE))},
    "linear probe": {None: _lp},
    "CoOp": {None: Recipe(**_coop_sgd, epochs=200, options={"n_ctx": 16, "init": None}, sources={
        **_COOP_SRC, "options.n_ctx": f"{COOP} train.py:91", "options.init": f"{COOP} train.py:93 (random)"})},
    "VPT-deep": {None: _vpt},
    "LoRA": {None: _lora},
    "full fine-tune": {None: _ft},
    "mean pooling": {"none": Recipe(steps=0, precision="fp16", sources=every(_NONE)), "full": _c4c,
                     "partial": _vop.replace(options={"rank": 8, "last_layers": 2}, sources={
                         **_VOP_SRC, "options.rank": "unused by partial tuning",
                         "options.last_layers": "VoP §4.1's Partial baseline tunes the last layers; "
                                                "how many is not stated"}),
                     "lora": _tempme.replace(options={"rank": 8, "last_layers": 2}, sources={
                         **_tempme.sources, "options.rank": f"{_TM}:70",
                         "options.last_layers": "unused by LoRA"})},
    "VoP": {None: _vop},
    "TempMe": {"lora": _tempme, "full": _tempme_full},
    "SCPNet": {None: _scpnet},
    "ZS-CLIP": {None: Recipe(steps=0, precision="fp16", sources=every(
        f"nothing trains: hand-written templates per dataset, {SOFTCPT} trainers/zsclip.py:18-50"))},
    "LP-CLIP": {None: _lp_mt},
    "CoOp-CA": {None: _hard},
    "CoOp-MT": {None: _hard},
    "SoftCPT": {None: _softcpt},
}

BACKBONE = {**{m: "ViT-B/32" for m in ("zero-shot", "linear probe", "CoOp", "mean pooling", "VoP", "TempMe")},
            "VPT-deep": "ViT-B/16 pre-trained on ImageNet-21k (VPT §4); not CLIP",
            "LoRA": "ViT-B/16 (CLIP-LoRA run_utils.py:26)", "full fine-tune": "ViT-B/16 (CLIP-LoRA run_utils.py:26)",
            "SCPNet": "RN50 (SCPNet model.py:14-30)",
            **{m: "RN50 (the SoftCPT paper's table; vit_b32 configs ship too)"
               for m in ("ZS-CLIP", "LP-CLIP", "CoOp-CA", "CoOp-MT", "SoftCPT")}}

NOTES = {
    "CoOp": ["Dassl casts CLIP to fp16 and trains the context in fp16 (PREC fp16); the loop here keeps float32 "
             "weights under autocast."],
    "LoRA": ["CLIP-LoRA puts dropout 0.25 before each LoRA module and scales by alpha / r = 0.5 "
             "(run_utils.py:36-37); clipadapt's LoRA has neither."],
    "VoP": ["VoP's learning rates were searched per variant and never published (§4.1); X-Pool's "
            "defaults (warm-up, clipping) are assumed."],
    "TempMe": ["TempMe selects its checkpoint on the test split every 150 steps (main.py:335-347); "
               "clipadapt evaluates the last step."],
    "SCPNet": ["SCPNet keeps the best epoch of {regular, EMA} by test mAP (train.py:113-118); clipadapt "
               "evaluates the last step.", "The official code is single-positive only; the proportion "
               "setting here keeps the same recipe."],
    "SoftCPT": ["The paper's table is RN50 on General-10 with the authors' own splits (not shipped)."],
}
