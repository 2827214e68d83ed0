"""Few-shot image classification (chapter 2): ``shots`` training pictures per class, a test
set, cross-entropy, accuracy."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..core import distributed, features
from ..methods import probe_search
from .protocol import Loader, Task, device_of, fresh_views


class ClassificationTask(Task):
    """``shots`` training examples per class of a few-shot task
    (:class:`clipadapt.data.fewshot.FewShotTask` or a loaded CoOp-format dataset) and its
    test set; the metric is accuracy.

    A method whose image encoder is frozen (``frozen_image_encoder``) trains and is
    evaluated on stored features: every image is encoded once per module
    (``encode_image``), and its ``logits_from_features`` is the classifier.
    """

    kind = "classification"

    def __init__(self, task, shots: int, test: tuple[torch.Tensor, torch.Tensor] | None = None, draw: int = 0):
        self.task, self.shots = task, shots
        # the run's own few-shot pictures (draw 0: the task's first draw, which any task has)
        self.x_train, self.y_train = task.train_set(shots, draw) if draw else task.train_set(shots)
        self.x_test, self.y_test = test if test is not None else task.test_set()
        self.context = {"classnames": list(task.classnames), "template": task.template}
        self._stored: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    def _inputs(self, module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """Training and test inputs: images, or the stored features of a frozen encoder."""
        if not module.frozen_image_encoder:
            return self.x_train, self.x_test
        if id(module) not in self._stored:
            self._stored = {id(module): (module.encode_image(self.x_train), module.encode_image(self.x_test))}
        return self._stored[id(module)]

    def _logits(self, module: nn.Module) -> Callable:
        return module.logits_from_features if module.frozen_image_encoder else module

    def loader(self, module: nn.Module, recipe, seed: int, device) -> Loader:
        """Stored features where the encoder is frozen and the recipe caches them; else the
        pictures, augmented per step as the recipe names (``recipe.augment``, each picture
        from a stream of its own), and encoded in the batch where the encoder is frozen."""
        per_batch = len(self.x_train) if recipe.full_batch else recipe.batch_size
        cached = module.frozen_image_encoder and recipe.cache_features
        if cached or (recipe.augment == "none" and not module.frozen_image_encoder):
            x, y = self._inputs(module)[0].to(device), self.y_train.to(device)

            def load(indices: torch.Tensor, step: int):
                idx = indices.to(x.device)
                return x[idx], y[idx]

            return Loader(len(x), per_batch, load)
        return Loader(len(self.x_train), per_batch, fresh_views(self.x_train, self.y_train, module, recipe.augment,
                                                                seed, device))

    def fit_probe(self, module: nn.Module) -> None:
        """Fit ``module``'s official linear probe (``fit_features``) on the stored training
        features, its C chosen on ``min(shots, 4)`` validation pictures per class
        (:func:`clipadapt.methods.probe_search.val_shots`)."""
        val_x, val_y = self.task.val_set(probe_search.val_shots(self.shots))
        with torch.no_grad():
            module.fit_features(self._inputs(module)[0], self.y_train, module.encode_image(val_x), val_y)

    def loss(self, module: nn.Module, batch) -> torch.Tensor:
        inputs, labels = batch
        # the logits in the module's dtype: float16 under the official fp16, where CoOp's trainer
        # too takes the cross-entropy of its float16 logits (no cast)
        return F.cross_entropy(self._logits(module)(inputs), labels)

    def evaluate(self, module: nn.Module) -> dict[str, float]:
        device = device_of(module)
        x_test = self._inputs(module)[1]
        logits = self._logits(module)
        preds = distributed.encode_sharded(lambda x: logits(x.to(device)).argmax(1), x_test, features.encode_batched)
        return {"accuracy": preds.eq(self.y_test.to(device)).float().mean().item()}

    def row(self, metrics: dict) -> dict:
        return {"accuracy (%)": 100 * metrics["accuracy"]}

    def encoder(self, module: nn.Module) -> Callable:
        return module.encode_image

    def example(self, device) -> torch.Tensor:
        return self.x_test[:1].to(device)
