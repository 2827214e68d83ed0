"""Text-video retrieval (chapters 3-5): video-caption pairs, the symmetric InfoNCE loss, and
R@1/5/10, MdR and MnR both ways (with the reversal test where the data has twins; with
every caption a query where a test video has several, as MSVD's)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..core import distributed, features, losses, metrics, seeds
from ..data import augment
from ..data.video import VideoError
from .protocol import Loader, Task, device_of

VIDEO_BATCH = 32  # videos per evaluation batch (each holds T frames)


class RetrievalTask(Task):
    """Text-video retrieval: video-caption pairs (:class:`clipadapt.data.video.VideoTextDataset`)
    for training and testing, the symmetric InfoNCE loss with identical captions counted
    as positives, and R@1/5/10, MdR and MnR both ways.

    ``partners[i]`` (optional) is the index of training pair ``i``'s twin (its time
    reversal): then an example is a pair of twins, drawn together, so that the loss can only
    be lowered by telling each video from its reversal. ``twins[i]`` (optional) is the twin
    caption of test pair ``i``: then the metrics include ``reversal``, how often a video
    scores its own caption above its twin's (0.5 is guessing).

    When test videos have several captions each (``test.captions_per_video > 1``, MSVD),
    every caption is a query, each video is encoded once, and video-to-text retrieval finds a
    video's caption set by its best caption
    (:func:`clipadapt.core.metrics.multi_caption_metrics`); otherwise pair ``i``'s caption
    and video are each other's only answer.

    ``max_tokens`` (optional) cuts every text to that many tokens, start and end of text
    included, as CLIP4Clip's ``max_words`` does (64 for the paragraphs of DiDeMo and
    ActivityNet Captions). The tokenizer itself pads and truncates to the model's context
    length (77 for CLIP); the causal mask keeps the padding after the end-of-text token out
    of the pooled feature, so a text cut at 64 and padded to 77 gives the features of
    CLIP4Clip's 64-token input.
    """

    kind = "retrieval"

    def __init__(self, train, test, tokenizer, partners: list[int] | None = None, twins: list[str] | None = None,
                 max_tokens: int | None = None):
        if max_tokens is not None and max_tokens < 2:
            raise ValueError(f"max_tokens must leave room for the start and end of text, got {max_tokens}")
        self.train, self.test, self.tokenizer = train, test, tokenizer
        self.partners, self.twins, self.max_tokens = partners, twins, max_tokens
        self.context = {"frames": test.frames}

    @property
    def n_train(self) -> int:
        return len(self.train)

    def units(self) -> list[tuple[int, ...]]:
        """The examples the driver draws: twin pairs where the data has them, else single pairs."""
        if self.partners is None:
            return [(i,) for i in range(len(self.train))]
        return sorted({tuple(sorted((i, p))) for i, p in enumerate(self.partners)})

    def loader(self, module: nn.Module, recipe, seed: int, device) -> Loader:
        """A video's frames are drawn from a stream of its own (seed, step, index), so a
        batch's videos do not depend on how it is sharded. Under an official frame rule
        (``train.from_raw``) the recipe's augmentation works on the raw frames, inside the
        dataset (:meth:`clipadapt.data.video.VideoTextDataset.video`); else on the frames it gives."""
        units = self.units()

        raw = self.train.from_raw  # an official frame rule: the dataset augments the raw frames

        def load(indices: torch.Tensor, step: int):
            videos, captions = [], []
            for i in (j for u in indices.tolist() for j in units[u]):
                g = seeds.generator(seed, "augment", str(step), str(i))
                v, c, _ = self.train.batch([i], seeds.generator(seed, "frames", str(step), str(i)),
                                           augment=(recipe.augment, g) if raw else None)
                if len(v) and not raw and recipe.augment != "none":  # one draw for all the video's frames
                    v = augment.one(recipe.augment, v[0], g)[None]
                videos.append(v)
                captions += c
            if not videos:
                raise RuntimeError(f"no video of step {step}'s batch could be read")
            return torch.cat(videos).to(device), captions

        return Loader(len(units), max(1, recipe.batch_size // len(units[0])), load)

    def loss(self, module: nn.Module, batch) -> torch.Tensor:
        videos, captions = batch
        device = videos.device
        scale = module.clip.logit_scale.exp().detach().clamp(max=100)
        # with several processes the negatives are the global batch (identity with one)
        v = distributed.gather_with_grad(module.encode_video(videos))
        t = distributed.gather_with_grad(module.encode_text(self.tokens(captions).to(device)))
        captions = distributed.gather_objects(captions)
        return losses.clip_loss(v, t, scale, losses.caption_positives(captions).to(device))

    def tokens(self, texts: list[str]) -> torch.Tensor:
        """Token ids ``(B, context)`` of ``texts``, cut to :attr:`max_tokens` where set."""
        ids = self.tokenizer(texts)
        return ids if self.max_tokens is None else truncate_tokens(ids, self.max_tokens)

    def features(self, module: nn.Module, dataset=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised video and caption features of every pair of ``dataset`` (the test
        set by default), in order."""
        dataset = dataset or self.test
        module.eval()
        device = device_of(module)

        def encode(idx):
            videos, captions, failures = dataset.batch(list(idx))
            if failures:
                raise RuntimeError(f"evaluation needs every video; these failed: {failures}")
            return (F.normalize(module.encode_video(videos.to(device)), dim=-1),
                    F.normalize(module.encode_text(self.tokens(captions).to(device)), dim=-1))

        return distributed.encode_sharded(encode, range(len(dataset)),
                                          lambda fn, x: features.encode_batched(fn, x, VIDEO_BATCH))

    def caption_features(self, module: nn.Module, dataset=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For test videos with several captions: ``(videos (V, D), captions (N, D), video_of (N,))``,
        each distinct video encoded once, every caption in pair order."""
        dataset = dataset or self.test
        module.eval()
        device = device_of(module)
        first, video_of = dataset.video_groups()

        def encode_videos(idx):
            videos, _, failures = dataset.batch(list(idx))
            if failures:
                raise RuntimeError(f"evaluation needs every video; these failed: {failures}")
            return F.normalize(module.encode_video(videos.to(device)), dim=-1)

        def encode_texts(idx):
            texts = [dataset.records[i][1] for i in idx]
            return F.normalize(module.encode_text(self.tokens(texts).to(device)), dim=-1)

        v = distributed.encode_sharded(encode_videos, first, lambda fn, x: features.encode_batched(fn, x, VIDEO_BATCH))
        t = distributed.encode_sharded(encode_texts, range(len(dataset)), lambda fn, x: features.encode_batched(fn, x, 256))
        return v, t, torch.tensor(video_of, device=v.device)

    def evaluate(self, module: nn.Module) -> dict:
        return self.evaluate_with_features(module)[0]

    def evaluate_with_features(self, module: nn.Module) -> tuple[dict, tuple[torch.Tensor, torch.Tensor] | None]:
        """The metrics, and the test pairs' features ``(videos, captions)`` they came from (as
        :meth:`features` gives them; None where a video has several captions), so that a
        chapter shows a kept run's retrievals without encoding the test set again."""
        if self.test.captions_per_video > 1:
            v, t, video_of = self.caption_features(module)
            return metrics.multi_caption_metrics(t @ v.t(), video_of), None
        v, t = self.features(module)
        sim = t @ v.t()
        out = {"text_to_video": metrics.retrieval_metrics(sim), "video_to_text": metrics.retrieval_metrics(sim.t())}
        if self.twins is not None:
            device = v.device
            tw = F.normalize(distributed.encode_sharded(
                lambda c: module.encode_text(self.tokens(list(c)).to(device)), self.twins,
                lambda fn, x: features.encode_batched(fn, x, 64)), dim=-1)
            out["reversal"] = ((v * t).sum(1) > (v * tw).sum(1)).float().mean().item()
        return out, (v, t)

    def row(self, metrics: dict) -> dict:
        """The columns of chapter 4's table (named as in :data:`clipadapt.methods.vop.PAPER_COLUMNS`)."""
        out = {}
        for short, key in (("t2v", "text_to_video"), ("v2t", "video_to_text")):
            out.update({f"{short} {m}": metrics[key][m] for m in ("R@1", "R@5", "R@10", "MdR", "MnR")})
        if "reversal" in metrics:
            out["reversal (%)"] = 100 * metrics["reversal"]
        return out

    def encoder(self, module: nn.Module) -> Callable:
        return module.encode_video

    def warm(self) -> None:
        """Every training and test video decoded into its dataset's cache, as far as the
        cache holds them (a video that cannot be decoded is left for its first use to report)."""
        for dataset in (self.train, self.test):
            decode = dataset.rule_frames if dataset.from_raw else dataset.cropped_frames
            for path in dict.fromkeys(p for p, _ in dataset.records):
                if dataset.cache_bytes >= dataset.cache_budget:
                    break
                try:
                    decode(path)
                except VideoError:
                    continue

    def example(self, device) -> torch.Tensor:
        s = self.test.image_size
        return torch.randn(1, self.test.frames, 3, s, s, device=device)


def truncate_tokens(ids: torch.Tensor, n: int) -> torch.Tensor:
    """CLIP token ids ``(B, L)`` cut to ``n`` tokens: a longer text keeps its first ``n - 1``
    tokens (start of text included), then the end-of-text token (CLIP's largest id, found
    by argmax), and padding (0) after it; shorter texts come back unchanged."""
    eot = ids.argmax(dim=-1)  # (B,)
    long = eot >= n
    if not long.any():
        return ids
    out = ids.clone()
    out[long, n - 1] = ids[long, eot[long]]
    out[long, n:] = 0
    return out
