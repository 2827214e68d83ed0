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
and the reversal test) are the tasks of Parts I and II; :class:`MultiTaskClassificationTask`
(many few-shot tasks trained jointly, the mean of the per-task accuracies) is SoftCPT's; :class:`MultiLabelTask`
(incomplete multi-label recognition, mAP) is chapter 6's.

What ``python -m clipadapt.reproduce`` (:mod:`clipadapt.reproduce`) also asks of a task
class, listed in :data:`TASKS` under its ``kind``:

* ``for_profile(profile, clip, preprocess, tokenizer, data_root, workdir)`` (class
  method) -- the task a chapter trains this kind of method on under ``profile``;
* ``row(metrics)`` (optional) -- the metrics as the flat columns of the chapter's table;
* ``sampling(module, recipe, seed, device)`` (optional) -- ``(n, per_batch, load)``: the
  run then goes through the ``n`` examples in epochs, ``per_batch`` per global batch, and
  ``load(indices, step)`` makes a batch of any subset, so that each process of a
  data-parallel run reads only its shard. Without it, ``reproduce`` cuts each process's
  part out of the global batch of ``batches``.

A loss that compares the examples of a batch with each other (a contrastive loss)
gathers them from every process with :func:`clipadapt.distributed.gather_with_grad`;
with one process that is the identity. A module that keeps state beside its parameters
and buffers (a moving average held as a plain attribute, updated by ``after_step()``)
hands it to checkpoints with ``resume_state()`` and takes it back with
``load_resume_state(tensors)`` (:mod:`clipadapt.runstate`), so that a resumed run is exact.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed, features, losses, metrics, profiles, seeds

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

    @classmethod
    def for_profile(cls, profile, clip, preprocess, tokenizer, data_root=None, workdir=None) -> "ClassificationTask":
        """The profile's few-shot task (chapter 2) at its largest number of shots."""
        from .data import fewshot

        p = profiles.get(profile)
        task = fewshot.load_task(p, preprocess, data_root)
        return cls(task, max(p.fewshot_shots), task.test_set(p.fewshot_test_per_class))

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

    def sampling(self, module: nn.Module, recipe, seed: int, device):
        x, y = self._inputs(module)[0].to(device), self.y_train.to(device)

        def load(indices: list[int], step: int):
            idx = torch.as_tensor(indices, device=x.device)
            return x[idx], y[idx]

        return len(x), len(x) if recipe.full_batch else recipe.batch_size, load

    def loss(self, module: nn.Module, batch) -> torch.Tensor:
        inputs, labels = batch
        return F.cross_entropy(self._logits(module)(inputs), labels)

    def evaluate(self, module: nn.Module) -> dict[str, float]:
        device = _device(module)
        x_test = self._inputs(module)[1]
        logits = self._logits(module)
        preds = distributed.encode_sharded(lambda x: logits(x.to(device)).argmax(1), x_test, features.encode_batched)
        return {"accuracy": preds.eq(self.y_test.to(device)).float().mean().item()}

    @staticmethod
    def row(metrics: dict) -> dict:
        return {"accuracy (%)": 100 * metrics["accuracy"]}

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

    @classmethod
    def for_profile(cls, profile, clip, preprocess, tokenizer, data_root=None, workdir=None) -> "RetrievalTask":
        """Part II's video-caption sets (chapters 3-4), with the reversal twins where the
        data has them; synthetic videos are written to ``workdir/videos``."""
        from pathlib import Path

        from .data import video_sets

        data = video_sets.video_data(profile, Path(workdir or ".") / "videos", data_root)
        return cls(data["train"], data["test"], tokenizer, partners=data["partners"], twins=data["twins"])

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

    def sampling(self, module: nn.Module, recipe, seed: int, device):
        """Examples are twin pairs (a video and its reversal, drawn together) where the
        data has them, else single pairs; a video's frames are drawn from a stream of its
        own (seed, step, index), so a batch's videos do not depend on how it is sharded."""
        if self.partners is None:
            units = [(i,) for i in range(len(self.train))]
        else:
            units = sorted({tuple(sorted((i, p))) for i, p in enumerate(self.partners)})

        def load(indices: list[int], step: int):
            videos, captions = [], []
            for i in (j for u in indices for j in units[u]):
                v, c, _ = self.train.batch([i], seeds.generator(seed, "frames", str(step), str(i)))
                videos.append(v)
                captions += c
            if not videos:
                raise RuntimeError(f"no video of step {step}'s batch could be read")
            return torch.cat(videos).to(device), captions

        return len(units), recipe.batch_size // len(units[0]), load

    def loss(self, module: nn.Module, batch) -> torch.Tensor:
        videos, captions = batch
        device = videos.device
        scale = module.clip.logit_scale.exp().detach().clamp(max=100)
        # with several processes the negatives are the global batch (identity with one)
        v = distributed.gather_with_grad(module.encode_video(videos))
        t = distributed.gather_with_grad(module.encode_text(self.tokenizer(captions).to(device)))
        captions = distributed.gather_objects(captions)
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

        return distributed.encode_sharded(encode, range(len(dataset)),
                                          lambda fn, x: features.encode_batched(fn, x, VIDEO_BATCH))

    def evaluate(self, module: nn.Module) -> dict:
        v, t = self.features(module)
        sim = t @ v.t()
        out = {"text_to_video": metrics.retrieval_metrics(sim), "video_to_text": metrics.retrieval_metrics(sim.t())}
        if self.twins is not None:
            device = v.device
            tw = F.normalize(distributed.encode_sharded(
                lambda c: module.encode_text(self.tokenizer(list(c)).to(device)), self.twins,
                lambda fn, x: features.encode_batched(fn, x, 64)), dim=-1)
            out["reversal"] = ((v * t).sum(1) > (v * tw).sum(1)).float().mean().item()
        return out

    @staticmethod
    def row(metrics: dict) -> dict:
        """The columns of chapter 4's table (named as in :data:`clipadapt.methods.vop.PAPER_COLUMNS`)."""
        out = {}
        for short, key in (("t2v", "text_to_video"), ("v2t", "video_to_text")):
            out.update({f"{short} {m}": metrics[key][m] for m in ("R@1", "R@5", "R@10", "MdR", "MnR")})
        if "reversal" in metrics:
            out["reversal (%)"] = 100 * metrics["reversal"]
        return out

    def encoder(self, module: nn.Module) -> Callable:
        return module.encode_video

    def example(self, device) -> torch.Tensor:
        s = self.test.image_size
        return torch.randn(1, self.test.frames, 3, s, s, device=device)


def _fingerprint(encoder: nn.Module) -> int:
    """A cache key for an encoder's weights: a hash of the first 32 values of each tensor."""
    return hash(torch.cat([p.detach().flatten()[:32].float().cpu() for p in encoder.parameters()]).numpy().tobytes())


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


class MultiTaskClassificationTask:
    """Many few-shot classification tasks trained at once (SoftCPT, chapter 7): the union
    of every task's ``shots`` per class, in batches that mix the tasks.

    ``suite`` is a :class:`clipadapt.data.multitask.Suite`. A method's module returns logits
    over the classes of all tasks, concatenated in task order (``module.classifier()`` maps
    frozen image features to them, ``module.frozen_features(images)`` encodes images). The
    loss is softmax cross-entropy over each sample's *own* task's classes, summed over the
    tasks and divided by the batch size; the metric is the unweighted mean over tasks of
    each task's accuracy (top-1, or the mean per-class accuracy where the suite says so).

    The frozen image features are kept in ``cache`` (a dict; pass the same one to the tasks
    of several shot counts and seeds), keyed by the image encoder's weights.
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

    @classmethod
    def for_profile(cls, profile, clip, preprocess, tokenizer, data_root=None, workdir=None) -> "MultiTaskClassificationTask":
        """The profile's suite (chapter 7) at its largest number of shots."""
        from .data import multitask

        p = profiles.get(profile)
        return cls(multitask.suite_for(p, preprocess, data_root), max(p.fewshot_shots), p.fewshot_test_per_class)

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
        fingerprint = _fingerprint(module.clip.visual)
        out = []
        for i in range(len(self.suite)):
            key = ("features", fingerprint, _key(self.suite.tasks[i], self.cache), split,
                   self.shots if split == "train" else self.test_per_class)
            if key not in self.cache:
                self.cache[key] = module.frozen_features(self._images(i, split)[0])
            out.append(self.cache[key])
        return out

    def batches(self, module: nn.Module, recipe, seed: int, device) -> Callable[[int], tuple]:
        x = torch.cat(self._features(module, "train")).to(device)
        y, t = self.y_train.to(device), self.t_train.to(device)

        def batch(step: int):
            if recipe.full_batch:
                return x, y, t
            idx = torch.randperm(len(x), generator=seeds.step_generator(seed, step))[: recipe.batch_size].to(device)
            return x[idx], y[idx], t[idx]

        return batch

    def loss(self, module: nn.Module, batch) -> torch.Tensor:
        feats, labels, task = batch
        logits = module.classifier()(feats)  # (B, sum C)
        own = self.own.to(logits.device)[task]
        targets = labels + self.offsets.to(labels.device)[task]
        return F.cross_entropy(logits.masked_fill(~own, float("-inf")), targets, reduction="sum") / len(labels)

    def evaluate(self, module: nn.Module) -> dict:
        device = _device(module)
        with torch.no_grad():
            head = module.classifier()
            per_task = []
            for i, feats in enumerate(self._features(module, "test")):
                o, n = int(self.offsets[i]), self.sizes[i]
                preds = features.encode_batched(lambda f: head(f.to(device))[:, o:o + n].argmax(1), feats).cpu()
                per_task.append(metrics.task_accuracy(preds, self._images(i, "test")[1], self.suite.metric(i)))
        return {"accuracy": sum(per_task) / len(per_task), "per_task": per_task}

    @staticmethod
    def row(metrics: dict) -> dict:
        """Chapter 7's columns: the mean over tasks, and the worst and best task."""
        per_task = metrics["per_task"]
        return {"mean accuracy (%)": 100 * metrics["accuracy"], "worst task (%)": 100 * min(per_task),
                "best task (%)": 100 * max(per_task)}

    def encoder(self, module: nn.Module) -> Callable:
        return module.clip.encode_image

    def example(self, device) -> torch.Tensor:
        return self._images(0, "test")[0][:1].to(device)


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
    ``image_encoder``, ``encode_image`` and ``logits_from_features``) trains on stored features instead:
    ``pool`` weak and ``pool`` strong views of every training image and the test images are
    encoded once per encoder weights (shared by every run on the same frozen CLIP), and a
    batch draws its views from the pools (``batch["features"]`` is then true).
    """

    kind = "multilabel"

    # the label setting reproduce trains with: SCPNet's headline setting keeps 10% of the labels
    LABEL_PROPORTION = 0.1

    @classmethod
    def for_profile(cls, profile, clip, preprocess, tokenizer, data_root=None, workdir=None) -> "MultiLabelTask":
        """The scene world of the profile's size, drawn at the CLIP's input size, with 10% of
        the training labels observed (seed 0). The real datasets (MS-COCO, VOC:
        :mod:`clipadapt.data.multilabel_sets`) are not wired to a profile."""
        from .data import multilabel

        size = clip.visual.image_size
        train, test = multilabel.scene_sets(profile, image_size=size if isinstance(size, int) else size[0])
        return cls(train, multilabel.observe(train.targets, cls.LABEL_PROPORTION, seed=0), test)

    def __init__(self, train, observed: torch.Tensor, test, threshold: float = 0.5, pool: int = 4):
        if observed.shape != train.targets.shape:
            raise ValueError(f"observed labels must match the training targets {tuple(train.targets.shape)}, "
                             f"got {tuple(observed.shape)}")
        self.train, self.observed, self.test, self.threshold = train, observed, test, threshold
        self.context = {"classnames": list(train.classnames), "template": train.template}
        self.pool = pool
        self._stored: dict[int, dict[str, torch.Tensor]] = {}

    def relabel(self, observed: torch.Tensor) -> "MultiLabelTask":
        """The same images under other observed labels, sharing the stored features (the
        ablation's label settings and seeds encode the images once)."""
        other = MultiLabelTask(self.train, observed, self.test, self.threshold, self.pool)
        other._stored, other.context = self._stored, dict(self.context)
        return other

    def _frozen(self, module: nn.Module) -> bool:
        return bool(getattr(module, "frozen_image_encoder", False))

    def stored(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """Features of a frozen encoder: ``weak`` and ``strong`` ``(pool, N, D)``, ``test`` ``(N, D)``."""
        from .data import multilabel
        from .data.pixels import normalize

        # keyed by the image encoder's weights, so that a run's weight average and every run
        # on the same CLIP share them
        key = _fingerprint(module.image_encoder)
        if key not in self._stored:
            device = _device(module)
            encode = lambda x: module.encode_image(normalize(x).to(device)).float()  # noqa: E731
            out = {"test": features.encode_batched(encode, self.test.images)}
            for kind, make in (("weak", multilabel.weak_view), ("strong", multilabel.strong_view)):
                g = seeds.generator(0, "multilabel", "pool", kind)
                out[kind] = torch.stack([features.encode_batched(lambda x: encode(make(x, g)), self.train.images)
                                         for _ in range(self.pool)])
            self._stored.clear()  # one encoder at a time (the dict is shared by relabel)
            self._stored[key] = out
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


# the task class of each kind (MethodSpec.task): what reproduce builds for a method
TASKS: dict[str, type] = {"classification": ClassificationTask, "retrieval": RetrievalTask,
                         "multitask": MultiTaskClassificationTask,
                         "multilabel": MultiLabelTask}


def for_profile(kind: str, profile, clip, preprocess, tokenizer, data_root=None, workdir=None):
    """The task of ``kind`` that the chapters train on under ``profile``."""
    if kind not in TASKS:
        raise ValueError(f"no task class for kind {kind!r}; add it to clipadapt.tasks.TASKS (known: {', '.join(TASKS)})")
    cls = TASKS[kind]
    if not hasattr(cls, "for_profile"):
        raise TypeError(f"{cls.__name__} has no for_profile(profile, clip, preprocess, tokenizer, data_root, workdir); "
                        "reproduce needs it to build the task (see clipadapt.tasks)")
    return cls.for_profile(profile, clip, preprocess, tokenizer, data_root=data_root, workdir=workdir)
