"""Many few-shot classification tasks trained at once (SoftCPT, chapter 7)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..core import features, metrics
from ..methods import probe_search
from .protocol import Loader, Task, device_of, fresh_views


def _key(task, cache: dict):
    """A cache key for a few-shot task: the task itself where it is hashable (the frozen
    synthetic tasks compare by value), else its identity -- and then ``cache`` keeps the task
    alive, so that its id cannot pass to another task (of another seed) while the cache lives."""
    try:
        hash(task)
        return task
    except TypeError:
        cache.setdefault(("alive", id(task)), task)
        return id(task)


class MultiTaskClassificationTask(Task):
    """Many few-shot classification tasks trained at once (SoftCPT, chapter 7): the union
    of every task's ``shots`` per class, in batches that mix the tasks.

    ``suite`` is a :class:`clipadapt.data.multitask.Suite`. A method's module returns logits
    over the classes of all tasks, concatenated in task order (``module.classifier()`` maps
    frozen image features to them, ``module.encode_image(images)`` encodes images). The
    loss is softmax cross-entropy over each sample's *own* task's classes, summed over the
    tasks and divided by the batch size; the metric is the unweighted mean over tasks of
    each task's accuracy (top-1, or the mean per-class accuracy where the suite says so).

    Where the recipe caches features (``cache_features``: the linear probe, and every method
    under ``tiny``), the frozen image features are kept in ``cache`` (a dict; pass the same
    one to the tasks of several shot counts and seeds), keyed by the image encoder's weights;
    otherwise each step's pictures are augmented afresh (``recipe.augment``) and encoded.
    """

    kind = "multitask"

    def __init__(self, suite, shots: int, test_per_class: int | None = 50, cache: dict | None = None):
        self.suite, self.shots, self.test_per_class = suite, shots, test_per_class
        self.cache = {} if cache is None else cache
        self.sizes = [len(t.classnames) for t in suite.tasks]
        self.offsets = torch.tensor([0] + self.sizes).cumsum(0)[:-1]
        self.context = {"tasks": [{"name": n, "classnames": list(t.classnames), "template": t.template}
                                  for n, t in zip(suite.names, suite.tasks)]}
        own = torch.zeros(len(self.sizes), sum(self.sizes), dtype=torch.bool)  # (T, sum C)
        for t, (o, n) in enumerate(zip(self.offsets.tolist(), self.sizes)):
            own[t, o:o + n] = True
        self.own = own
        ys = [self._images(i, "train")[1] for i in range(len(suite))]
        self.y_train = torch.cat(ys)  # labels within each sample's task
        self.t_train = torch.cat([torch.full_like(y, i) for i, y in enumerate(ys)])  # task of each sample

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    def _images(self, i: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        key = ("images", _key(self.suite.tasks[i], self.cache), split, self.shots if split == "train" else self.test_per_class)
        if key not in self.cache:
            task = self.suite.tasks[i]
            self.cache[key] = task.train_set(self.shots) if split == "train" else task.test_set(self.test_per_class)
        return self.cache[key]

    def _features(self, module: nn.Module, split: str) -> list[torch.Tensor]:
        """Per task, the frozen image features of ``split`` (computed once per encoder)."""
        fingerprint = features.fingerprint(module.image_encoder)
        out = []
        for i in range(len(self.suite)):
            key = ("features", fingerprint, _key(self.suite.tasks[i], self.cache), split,
                   self.shots if split == "train" else self.test_per_class)
            if key not in self.cache:
                self.cache[key] = module.encode_image(self._images(i, split)[0])
            out.append(self.cache[key])
        return out

    def loader(self, module: nn.Module, recipe, seed: int, device) -> Loader:
        """Frozen features computed once where the recipe caches them (the linear probe's
        official way, and the tiny profile's); else every step's pictures augmented afresh
        and encoded in the batch, as SoftCPT's code runs its image encoder on every batch."""
        per_batch = self.n_train if recipe.full_batch else recipe.batch_size
        y, t = self.y_train.to(device), self.t_train.to(device)
        if recipe.cache_features:
            x = torch.cat(self._features(module, "train")).to(device)

            def load(indices: torch.Tensor, step: int):
                idx = indices.to(device)
                return x[idx], y[idx], t[idx]

            return Loader(len(x), per_batch, load)
        images = torch.cat([self._images(i, "train")[0] for i in range(len(self.suite))])
        views = fresh_views(images, torch.stack([self.y_train, self.t_train], 1), module, recipe.augment, seed, device)

        def load_fresh(indices: torch.Tensor, step: int):
            feats, yt = views(indices, step)
            return feats, yt[:, 0], yt[:, 1]

        return Loader(len(images), per_batch, load_fresh)

    def fit_probe(self, module: nn.Module) -> None:
        """Fit ``module``'s official linear probe task by task (``fit_task``), as SoftCPT's
        lpclip/linear_probe.py runs once per task (its --task-id): each task's C chosen on
        ``min(shots, 4)`` validation pictures per class by the task's own metric."""
        train = self._features(module, "train")
        per_class = probe_search.val_shots(self.shots)
        with torch.no_grad():
            for i, task in enumerate(self.suite.tasks):
                val_x, val_y = task.val_set(per_class)
                kind = self.suite.metric(i)

                def score(pred, y, kind=kind) -> float:
                    return metrics.task_accuracy(torch.as_tensor(pred), torch.as_tensor(y), kind)

                module.fit_task(i, train[i], self._images(i, "train")[1], module.encode_image(val_x), val_y, score)

    def loss(self, module: nn.Module, batch) -> torch.Tensor:
        feats, labels, task = batch
        logits = module.classifier()(feats)  # (B, sum C); float16 under the official fp16, as SoftCPT's loss takes them
        own = self.own.to(logits.device)[task]
        targets = labels + self.offsets.to(labels.device)[task]
        return F.cross_entropy(logits.masked_fill(~own, float("-inf")), targets, reduction="sum") / len(labels)

    def evaluate(self, module: nn.Module) -> dict:
        device = device_of(module)
        with torch.no_grad():
            head = module.classifier()
            per_task = []
            for i, feats in enumerate(self._features(module, "test")):
                o, n = int(self.offsets[i]), self.sizes[i]
                preds = features.encode_batched(lambda f: head(f.to(device))[:, o:o + n].argmax(1), feats).cpu()
                per_task.append(metrics.task_accuracy(preds, self._images(i, "test")[1], self.suite.metric(i)))
        return {"accuracy": sum(per_task) / len(per_task), "per_task": per_task}

    def row(self, metrics: dict) -> dict:
        """Chapter 7's columns: the mean over tasks, and the worst and best task."""
        per_task = metrics["per_task"]
        return {"mean accuracy (%)": 100 * metrics["accuracy"], "worst task (%)": 100 * min(per_task),
                "best task (%)": 100 * max(per_task)}

    def encoder(self, module: nn.Module) -> Callable:
        return module.clip.encode_image

    def example(self, device) -> torch.Tensor:
        return self._images(0, "test")[0][:1].to(device)
