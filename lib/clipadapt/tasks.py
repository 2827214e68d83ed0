"""Tasks: what a method is trained on and measured by.

A task turns its data into the four things the runner (:mod:`clipadapt.runner`) needs:

* ``context`` -- what a method needs to be built (class names and prompt template; frames);
* ``batches(module, recipe, seed, device)`` -- a function ``step -> batch`` (a batch depends only on
  the seed and the step: :func:`clipadapt.seeds.step_generator`);
* ``loss(module, batch)`` -- the training objective;
* ``evaluate(module)`` -- the task's metrics as a dict;

plus ``n_train`` (for epoch-based budgets), and ``encoder(module)`` / ``example(device)``
(one input, to count multiply-adds). :class:`ClassificationTask` (few-shot
classification, accuracy) and :class:`RetrievalTask` (text-video retrieval, R@K both ways
and the reversal test) are the tasks of Parts I and II; :class:`MultiLabelTask`
(incomplete multi-label recognition, mAP) is chapter 6's.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import features, losses, metrics, seeds

VIDEO_BATCH = 32  # videos per evaluation batch (each holds T frames)


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


class ClassificationTask:
    """``shots`` training examples per class of a few-shot task
    (:class:`clipadapt.data.fewshot.FewShotTask` or a loaded CoOp-format dataset) and its
    test set; the metric is accuracy.

    A classifier whose image encoder is frozen may say so by defining
    ``frozen_features(images)`` and ``forward_features(features)``: the task then encodes
    every image once and trains and evaluates the head on the stored features.
    """

    kind = "classification"

    def __init__(self, task, shots: int, test: tuple[torch.Tensor, torch.Tensor] | None = None):
        self.task, self.shots = task, shots
        self.x_train, self.y_train = task.train_set(shots)
        self.x_test, self.y_test = test if test is not None else task.test_set()
        self.context = {"classnames": list(task.classnames), "template": task.template}
        self._stored: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    def _inputs(self, module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """Training and test inputs: images, or the frozen features of a frozen encoder."""
        if not hasattr(module, "frozen_features"):
            return self.x_train, self.x_test
        if id(module) not in self._stored:
            self._stored = {id(module): (module.frozen_features(self.x_train), module.frozen_features(self.x_test))}
        return self._stored[id(module)]

    def _logits(self, module: nn.Module) -> Callable:
        return module.forward_features if hasattr(module, "frozen_features") else module

    def batches(self, module: nn.Module, recipe, seed: int, device) -> Callable[[int], tuple]:
        x, y = self._inputs(module)[0].to(device), self.y_train.to(device)

        def batch(step: int):
            if recipe.full_batch:
                return x, y
            idx = torch.randperm(len(x), generator=seeds.step_generator(seed, step))[: recipe.batch_size]
            return x[idx.to(x.device)], y[idx.to(y.device)]

        return batch

    def loss(self, module: nn.Module, batch) -> torch.Tensor:
        inputs, labels = batch
        return F.cross_entropy(self._logits(module)(inputs), labels)

    def evaluate(self, module: nn.Module) -> dict[str, float]:
        device = _device(module)
        x_test = self._inputs(module)[1]
        logits = self._logits(module)
        preds = features.encode_batched(lambda x: logits(x.to(device)).argmax(1), x_test)
        return {"accuracy": preds.eq(self.y_test.to(device)).float().mean().item()}

    def encoder(self, module: nn.Module) -> Callable:
        return module.encode_image if hasattr(module, "encode_image") else module.clip.encode_image

    def example(self, device) -> torch.Tensor:
        return self.x_test[:1].to(device)


class RetrievalTask:
    """Text-video retrieval: video-caption pairs (:class:`clipadapt.data.video.VideoTextDataset`)
    for training and testing, the symmetric InfoNCE loss with identical captions counted
    as positives, and R@1/5/10, MdR, MnR and R-Sum both ways.

    ``partners[i]`` (optional) is the index of training pair ``i``'s twin (its time
    reversal): then every batch holds ``batch_size // 2`` pairs together with their twins,
    so that the loss can only be lowered by telling each video from its reversal.
    ``twins[i]`` (optional) is the twin caption of test pair ``i``: then the metrics include
    ``reversal``, how often a video scores its own caption above its twin's (0.5 is guessing).
    """

    kind = "retrieval"

    def __init__(self, train, test, tokenizer, partners: list[int] | None = None, twins: list[str] | None = None):
        self.train, self.test, self.tokenizer = train, test, tokenizer
        self.partners, self.twins = partners, twins
        self.context = {"frames": test.frames}

    @property
    def n_train(self) -> int:
        return len(self.train)

    def batches(self, module: nn.Module, recipe, seed: int, device) -> Callable[[int], tuple]:
        n, size = len(self.train), recipe.batch_size

        def batch(step: int):
            g = seeds.step_generator(seed, step)
            if self.partners is None:
                idx = torch.randperm(n, generator=g)[:size].tolist()
            else:
                first = torch.randperm(n, generator=g)[: size // 2].tolist()
                idx = list(dict.fromkeys(first + [self.partners[i] for i in first]))
            videos, captions, _ = self.train.batch(idx, g)  # the same generator draws the frames
            return videos.to(device), captions

        return batch

    def loss(self, module: nn.Module, batch) -> torch.Tensor:
        videos, captions = batch
        device = videos.device
        scale = module.clip.logit_scale.exp().detach().clamp(max=100)
        v = module.encode_video(videos)
        t = module.encode_text(self.tokenizer(captions).to(device))
        return losses.clip_loss(v, t, scale, losses.caption_positives(captions).to(device))

    def features(self, module: nn.Module, dataset=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised video and caption features of every pair of ``dataset`` (the test
        set by default), in order."""
        dataset = dataset or self.test
        module.eval()
        device = _device(module)

        def encode(idx):
            videos, captions, failures = dataset.batch(list(idx))
            if failures:
                raise RuntimeError(f"evaluation needs every video; these failed: {failures}")
            return (F.normalize(module.encode_video(videos.to(device)), dim=-1),
                    F.normalize(module.encode_text(self.tokenizer(captions).to(device)), dim=-1))

        return features.encode_batched(encode, range(len(dataset)), VIDEO_BATCH)

    def evaluate(self, module: nn.Module) -> dict:
        v, t = self.features(module)
        sim = t @ v.t()
        out = {"text_to_video": metrics.retrieval_metrics(sim), "video_to_text": metrics.retrieval_metrics(sim.t())}
        if self.twins is not None:
            device = v.device
            tw = F.normalize(features.encode_batched(
                lambda c: module.encode_text(self.tokenizer(list(c)).to(device)), self.twins, 64), dim=-1)
            out["reversal"] = ((v * t).sum(1) > (v * tw).sum(1)).float().mean().item()
        return out

    def encoder(self, module: nn.Module) -> Callable:
        return module.encode_video

    def example(self, device) -> torch.Tensor:
        s = self.test.image_size
        return torch.randn(1, self.test.frames, 3, s, s, device=device)


class MultiLabelTask:
    """Multi-label recognition with incomplete labels (chapter 6): training pictures in
    [0, 1] with observed labels ``(N, C)`` in {1, -1, 0} (:mod:`clipadapt.data.multilabel`),
    test pictures with full labels; the metrics are mAP, CF1 and OF1 (threshold 0.5).

    A batch holds the images' indices, their augmented views (one per name in the module's
    ``views``, default a single weak view: :func:`~clipadapt.data.multilabel.weak_view`,
    :func:`~clipadapt.data.multilabel.strong_view`), their observed labels and the epoch.
    The loss is the module's own ``training_loss(batch)`` where it has one (SCPNet's
    supervised + self-supervised objective), else the masked BCE of the first view. A module
    with ``averaged()`` (a moving average of its weights, updated by its ``after_step``,
    which the runner calls after every optimiser step) is evaluated through the average;
    the metrics of the weights themselves come with the suffix `` (regular)``.

    A module whose image encoder is frozen (``frozen_image_encoder``, with
    ``encode_image`` and ``logits_from_features``) trains on stored features instead:
    ``pool`` weak and ``pool`` strong views of every training image and the test images are
    encoded once per encoder weights (shared by every run on the same frozen CLIP), and a
    batch draws its views from the pools (``batch["features"]`` is then true).
    """

    kind = "multilabel"

    def __init__(self, train, observed: torch.Tensor, test, threshold: float = 0.5, pool: int = 4):
        if observed.shape != train.targets.shape:
            raise ValueError(f"observed labels must match the training targets {tuple(train.targets.shape)}, "
                             f"got {tuple(observed.shape)}")
        self.train, self.observed, self.test, self.threshold = train, observed, test, threshold
        self.context = {"classnames": list(train.classnames), "template": train.template}
        self.pool = pool
        self._stored: dict[tuple, dict[str, torch.Tensor]] = {}

    def _frozen(self, module: nn.Module) -> bool:
        return bool(getattr(module, "frozen_image_encoder", False))

    def stored(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """Features of a frozen encoder: ``weak`` and ``strong`` ``(pool, N, D)``, ``test`` ``(N, D)``."""
        from .data import multilabel
        from .data.pixels import normalize

        params = [p.detach() for p in module.parameters() if not p.requires_grad]
        key = tuple((tuple(p.shape), round(float(p.double().sum()), 6)) for p in params[:64])
        if key not in self._stored:
            device = _device(module)
            encode = lambda x: module.encode_image(normalize(x).to(device)).float()  # noqa: E731
            out = {"test": features.encode_batched(encode, self.test.images)}
            for kind, make in (("weak", multilabel.weak_view), ("strong", multilabel.strong_view)):
                g = seeds.generator(0, "multilabel", "pool", kind)
                out[kind] = torch.stack([features.encode_batched(lambda x: encode(make(x, g)), self.train.images)
                                         for _ in range(self.pool)])
            self._stored = {key: out}  # one encoder at a time
        return self._stored[key]

    @property
    def n_train(self) -> int:
        return len(self.train)

    def batches(self, module: nn.Module, recipe, seed: int, device) -> Callable[[int], dict]:
        from .data import multilabel
        from .data.pixels import normalize

        kinds = getattr(module, "views", ("weak",))
        make = {"weak": multilabel.weak_view, "strong": multilabel.strong_view}
        per_epoch = max(1, -(-self.n_train // recipe.batch_size))
        stored = self.stored(module) if self._frozen(module) else None

        def batch(step: int) -> dict:
            g = seeds.step_generator(seed, step)
            idx = torch.randperm(self.n_train, generator=g)[: recipe.batch_size]
            if stored is None:
                images = self.train.images[idx]
                views = [normalize(make[k](images, g)).to(device) for k in kinds]
            else:  # two different weak views where two are asked for
                pick = torch.randperm(self.pool, generator=g)
                views = [stored[k][pick[i], idx].to(device) for i, k in enumerate(kinds)]
            return {"index": idx.to(device), "views": views, "observed": self.observed[idx].to(device),
                    "epoch": step // per_epoch, "n_train": self.n_train, "features": stored is not None}

        return batch

    def loss(self, module: nn.Module, batch: dict) -> torch.Tensor:
        if hasattr(module, "training_loss"):
            return module.training_loss(batch)
        run = module.logits_from_features if batch["features"] else module
        return losses.masked_bce(run(batch["views"][0]).float(), batch["observed"])

    def scores(self, module: nn.Module) -> torch.Tensor:
        """Probabilities ``(N test, C)``."""
        from .data.pixels import normalize

        device = _device(module)
        module.eval()
        if self._frozen(module):
            with torch.no_grad():
                return torch.sigmoid(module.logits_from_features(self.stored(module)["test"].to(device)).float()).cpu()
        return features.encode_batched(lambda x: torch.sigmoid(module(normalize(x).to(device)).float()),
                                       self.test.images).cpu()

    def _metrics(self, probs: torch.Tensor) -> dict[str, float]:
        f1 = metrics.multilabel_f1(probs, self.test.targets, self.threshold)
        return {"mAP": metrics.mean_average_precision(probs, self.test.targets), "CF1": f1["CF1"], "OF1": f1["OF1"]}

    def evaluate(self, module: nn.Module) -> dict[str, float]:
        if not hasattr(module, "averaged") or module.averaged() is module:
            return self._metrics(self.scores(module))
        out = self._metrics(self.scores(module.averaged()))
        out.update({f"{k} (regular)": v for k, v in self._metrics(self.scores(module)).items()})
        return out

    def encoder(self, module: nn.Module) -> Callable:
        return module.encode_image if hasattr(module, "encode_image") else module

    def example(self, device) -> torch.Tensor:
        from .data.pixels import normalize

        return normalize(self.test.images[:1]).to(device)
