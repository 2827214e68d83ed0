"""Multi-label recognition with incomplete labels (chapter 6)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..core import features, losses, metrics, seeds
from ..core.pixels import normalize
from ..data import multilabel
from ..methods import protocol
from .protocol import Loader, Task, device_of


class MultiLabelTask(Task):
    """Multi-label recognition with incomplete labels (chapter 6): training pictures in
    [0, 1] with observed labels ``(N, C)`` in {1, -1, 0} (:mod:`clipadapt.data.multilabel`),
    test pictures with full labels; the metrics are mAP, CF1 and OF1 (threshold 0.5).

    A batch holds the images' indices, their augmented views (one per name in the method's
    views, :func:`clipadapt.methods.protocol.views`: :func:`~clipadapt.data.multilabel.weak_view`,
    :func:`~clipadapt.data.multilabel.strong_view`), their observed labels and the epoch.
    The loss is the method's own (:func:`~clipadapt.methods.protocol.training_loss`, SCPNet's
    supervised + self-supervised objective) where it has one, else the masked BCE of the
    first view. The method is evaluated through its averaged weights
    (:func:`~clipadapt.methods.protocol.averaged`: a moving average updated by its
    ``after_step``, or the module itself); where they are not the module itself, the metrics
    of the weights themselves come with the suffix `` (regular)``. A method has these three
    hooks by carrying :class:`~clipadapt.methods.protocol.OwnTraining`.

    A method whose image encoder is frozen (``frozen_image_encoder``, with
    ``image_encoder``, ``encode_image`` and ``logits_from_features``) trains on features
    (``batch["features"]`` is then true): where the recipe caches them (``cache_features``,
    the tiny profile), ``pool`` weak and ``pool`` strong views of every training image and the
    test images are encoded once per encoder weights (shared by every run on the same frozen
    CLIP) and a batch draws its views from the pools; otherwise (the official recipe, under
    ``colab`` and ``paper``) every step's fresh views are encoded in the batch.
    """

    kind = "multilabel"

    def __init__(self, train, observed: torch.Tensor, test, threshold: float = 0.5, pool: int = 4,
                 report: torch.Tensor | None = None):
        if observed.shape != train.targets.shape:
            raise ValueError(f"observed labels must match the training targets {tuple(train.targets.shape)}, "
                             f"got {tuple(observed.shape)}")
        self.train, self.observed, self.test, self.threshold = train, observed, test, threshold
        self.context = {"classnames": list(train.classnames), "template": train.template}
        self.pool = pool
        # (C,) bool, optional: classes whose mean AP the metrics also give, as "hidden AP"
        self.report = report
        self._stored: dict[int, dict[str, torch.Tensor]] = {}

    def relabel(self, observed: torch.Tensor) -> "MultiLabelTask":
        """The same images under other observed labels, sharing the stored features (the
        ablation's label settings and seeds encode the images once)."""
        other = MultiLabelTask(self.train, observed, self.test, self.threshold, self.pool, self.report)
        other._stored, other.context = self._stored, dict(self.context)
        return other

    def stored(self, module: nn.Module, parts: tuple[str, ...] = ("test", "weak", "strong")) -> dict[str, torch.Tensor]:
        """Features of a frozen encoder: ``weak`` and ``strong`` ``(pool, N, D)``, ``test`` ``(N, D)``;
        only ``parts`` are encoded if missing (scoring the test set needs no training views)."""
        # keyed by the image encoder's weights, so that a run's weight average and every run
        # on the same CLIP share them; each part is encoded once, the pools from their own streams
        key = features.fingerprint(module.image_encoder)
        if key not in self._stored:
            self._stored.clear()  # one encoder at a time (the dict is shared by relabel)
            self._stored[key] = {}
        out = self._stored[key]
        device = device_of(module)
        encode = lambda x: module.encode_image(normalize(x).to(device)).float()  # noqa: E731
        if "test" in parts and "test" not in out:
            out["test"] = features.encode_batched(encode, self.test.images)
        for kind, make in (("weak", multilabel.weak_view), ("strong", multilabel.strong_view)):
            if kind in parts and kind not in out:
                g = seeds.generator(0, "multilabel", "pool", kind)
                out[kind] = torch.stack([features.encode_batched(lambda x: encode(make(x, g)), self.train.images)
                                         for _ in range(self.pool)])
        return out

    @property
    def n_train(self) -> int:
        return len(self.train)

    def loader(self, module: nn.Module, recipe, seed: int, device) -> Loader:
        """A batch holds the images' indices, their views (``protocol.views(module)``), their observed
        labels and the epoch; each image's augmentations (or, from stored features, which of
        the pool's views it takes) come from a stream of its own (seed, step, index)."""
        # the official recipe's fresh strong views in SCPNet's order; the stored pool (tiny's) and
        # any other recipe keep the batched approximation
        strong = multilabel.official_strong_view if recipe.augment == "weak-strong" else multilabel.strong_view
        make = {"weak": multilabel.weak_view, "strong": strong}
        kinds = protocol.views(module)
        per_epoch = max(1, -(-self.n_train // recipe.batch_size))
        frozen = module.frozen_image_encoder
        stored = self.stored(module) if frozen and recipe.cache_features else None

        def load(indices: torch.Tensor, step: int) -> dict:
            streams = [seeds.generator(seed, "views", str(step), str(i)) for i in indices.tolist()]
            if stored is None:  # fresh views at every step (encoded here where the encoder is frozen)
                views = [normalize(torch.cat([make[k](self.train.images[i:i + 1], g)
                                              for i, g in zip(indices.tolist(), streams)])).to(device) for k in kinds]
                if frozen:
                    with torch.no_grad():
                        views = [module.encode_image(v).float() for v in views]
            else:  # two different weak views where two are asked for
                picks = torch.stack([torch.randperm(self.pool, generator=g) for g in streams])  # (B, pool)
                views = [stored[k][picks[:, j], indices].to(device) for j, k in enumerate(kinds)]
            return {"index": indices.to(device), "views": views, "observed": self.observed[indices].to(device),
                    "epoch": step // per_epoch, "n_train": self.n_train, "features": frozen}

        return Loader(self.n_train, min(self.n_train, recipe.batch_size), load)

    def loss(self, module: nn.Module, batch: dict) -> torch.Tensor:
        own = protocol.training_loss(module, batch)
        if own is not None:
            return own
        run = module.logits_from_features if batch["features"] else module
        return losses.masked_bce(run(batch["views"][0]).float(), batch["observed"])

    def scores(self, module: nn.Module) -> torch.Tensor:
        """Probabilities ``(N test, C)``."""
        device = device_of(module)
        module.eval()
        if module.frozen_image_encoder:
            with torch.no_grad():
                test = self.stored(module, ("test",))["test"]
                return torch.sigmoid(module.logits_from_features(test.to(device)).float()).cpu()
        return features.encode_batched(lambda x: torch.sigmoid(module(normalize(x).to(device)).float()),
                                       self.test.images).cpu()

    def _metrics(self, probs: torch.Tensor) -> dict[str, float]:
        f1 = metrics.multilabel_f1(probs, self.test.targets, self.threshold)
        out = {"mAP": metrics.mean_average_precision(probs, self.test.targets), "CF1": f1["CF1"], "OF1": f1["OF1"]}
        if self.report is not None:
            ap = metrics.average_precision(probs, self.test.targets)  # (C,)
            out["hidden AP"] = 100 * ap[self.report].mean().item()
        return out

    def evaluate(self, module: nn.Module) -> dict[str, float]:
        average = protocol.averaged(module)
        if average is module:
            return self._metrics(self.scores(module))
        out = self._metrics(self.scores(average))
        out.update({f"{k} (regular)": v for k, v in self._metrics(self.scores(module)).items()})
        return out

    def encoder(self, module: nn.Module) -> Callable:
        return module.encode_image

    def example(self, device) -> torch.Tensor:
        return normalize(self.test.images[:1]).to(device)
