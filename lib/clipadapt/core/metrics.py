"""Evaluation: zero-shot classification accuracy, retrieval recall, and multi-label mAP / CF1 / OF1."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def zero_shot_logits(image_features: torch.Tensor, class_features: torch.Tensor) -> torch.Tensor:
    """Cosine similarities ``(N images, C classes)``."""
    return F.normalize(image_features, dim=-1) @ F.normalize(class_features, dim=-1).t()


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of ``logits`` (N, C) against integer ``labels`` (N,)."""
    if logits.ndim != 2 or labels.ndim != 1 or len(logits) != len(labels):
        raise ValueError(f"expected logits (N, C) and labels (N,), got {tuple(logits.shape)} and {tuple(labels.shape)}")
    if len(labels) == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return (logits.argmax(1) == labels.to(logits.device)).float().mean().item()


def task_accuracy(preds: torch.Tensor, labels: torch.Tensor, kind: str = "accuracy") -> float:
    """One task's accuracy of predicted labels, as SoftCPT's evaluator measures it:
    ``"accuracy"`` (top-1 over the test set) or ``"mean_per_class"`` (the mean over the
    classes present of each class's accuracy)."""
    if preds.shape != labels.shape or len(labels) == 0:
        raise ValueError(f"expected equal, non-empty label vectors, got {tuple(preds.shape)} and {tuple(labels.shape)}")
    right = (preds == labels).float()
    if kind == "accuracy":
        return right.mean().item()
    if kind == "mean_per_class":
        return torch.stack([right[labels == c].mean() for c in labels.unique()]).mean().item()
    raise ValueError(f"unknown task metric {kind!r}; expected 'accuracy' or 'mean_per_class'")


def zero_shot_accuracy(image_features: torch.Tensor, class_features: torch.Tensor, labels: torch.Tensor) -> float:
    return accuracy(zero_shot_logits(image_features, class_features), labels)


def ranks(sim: torch.Tensor) -> torch.Tensor:
    """1-based rank of the diagonal entry of each row of a square similarity matrix.

    Ties are counted pessimistically: an item that scores exactly as high as the right one
    ranks before it, so a constant matrix gives no credit.
    """
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"expected a square similarity matrix (queries x items), got {tuple(sim.shape)}")
    right = sim.diagonal().unsqueeze(1)
    others = sim >= right
    return others.sum(1)  # the right item itself counts once


def retrieval_metrics(sim: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """Recall@K (percent), median and mean rank, for the queries of the rows of ``sim``
    whose right answer is the diagonal item."""
    return rank_metrics(ranks(sim), ks)


def ranks_of(sim: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    """1-based rank of item ``answers[i]`` in row ``i`` of ``sim`` (queries x items), ties
    counted pessimistically as in :func:`ranks`."""
    if sim.ndim != 2 or answers.shape != (sim.shape[0],):
        raise ValueError(f"expected sim (queries, items) and one answer per query, got {tuple(sim.shape)} and "
                         f"{tuple(answers.shape)}")
    right = sim.gather(1, answers.to(sim.device).long().unsqueeze(1))  # (Q, 1)
    return (sim >= right).sum(1)


def multi_caption_metrics(sim: torch.Tensor, video_of: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)) -> dict:
    """Both directions when a video has several captions (MSVD), as CLIP4Clip and X-Pool rank them.

    ``sim`` is ``(captions, videos)``; ``video_of[c]`` is caption ``c``'s video.

    * text to video: every caption is a query, ranked against all videos;
    * video to text: each video scores every video's caption set by its best caption (the
      maximum over the set), and its own set's rank counts; a video is found at R@1 when any
      one of its captions beats the best caption of every other video.

    With one caption per video, in video order, this is :func:`retrieval_metrics` both ways.
    """
    n_videos = sim.shape[1]
    video_of = video_of.to(sim.device).long()
    if video_of.shape != (sim.shape[0],) or video_of.min() < 0 or video_of.max() >= n_videos:
        raise ValueError(f"video_of must give one video in [0, {n_videos}) per caption row of sim {tuple(sim.shape)}")
    if torch.bincount(video_of, minlength=n_videos).min() == 0:
        raise ValueError("every video needs at least one caption for video-to-text retrieval")
    # best[g, v]: how well video v matches caption set g (its best caption)
    best = torch.full((n_videos, n_videos), float("-inf"), device=sim.device, dtype=sim.dtype)
    best = best.scatter_reduce(0, video_of.unsqueeze(1).expand(-1, n_videos), sim, reduce="amax")
    return {"text_to_video": rank_metrics(ranks_of(sim, video_of), ks),
            "video_to_text": rank_metrics(ranks(best.t()), ks)}


def rank_metrics(r: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """R@K (percent), MdR and MnR of 1-based ranks ``r``, as the papers' tables report them."""
    r = r.float()
    out = {f"R@{k}": 100.0 * (r <= k).float().mean().item() for k in ks}
    out["MdR"] = r.quantile(0.5).item()  # the mean of the two middle ranks when their number is even
    out["MnR"] = r.mean().item()
    out["R-Sum"] = sum(out[f"R@{k}"] for k in ks)  # R@1 + R@5 + R@10 by default, as in the TempMe paper
    return out


def image_text_retrieval(image_features: torch.Tensor, text_features: torch.Tensor, ks=(1, 5, 10)) -> dict[str, dict[str, float]]:
    """Both directions for paired features (row i of each belongs together)."""
    sim = zero_shot_logits(image_features, text_features)
    return {"image_to_text": retrieval_metrics(sim, ks), "text_to_image": retrieval_metrics(sim.t(), ks)}


# -- multi-label (chapter 6) ---------------------------------------------------------------------
def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Average precision per class (columns of ``scores`` and 0/1 ``targets``, (N, C)):
    the mean of the precision at the rank of each positive (ties broken by order, as the
    ASL/SCPNet code does). NaN for a class without positives."""
    if scores.shape != targets.shape or scores.ndim != 2:
        raise ValueError(f"scores and targets must both be (N, C), got {tuple(scores.shape)} and {tuple(targets.shape)}")
    order = scores.argsort(dim=0, descending=True, stable=True)
    hits = targets.gather(0, order).float()  # (N, C) positives in ranked order
    precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1, device=hits.device)[:, None]
    n_pos = hits.sum(0)
    return torch.where(n_pos > 0, (precision * hits).sum(0) / n_pos.clamp(min=1), torch.full_like(n_pos, float("nan")))


def mean_average_precision(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """mAP in percent: AP per class averaged over the classes that have positives."""
    ap = average_precision(scores, targets)
    if torch.isnan(ap).all():
        raise ValueError("no class has a positive: mAP is undefined")
    return 100.0 * ap.nanmean().item()


def multilabel_f1(probs: torch.Tensor, targets: torch.Tensor, threshold: float = 0.5) -> dict[str, float]:
    """Per-class (C) and overall (O) precision, recall and F1 in percent at ``threshold``:
    CP/CR average over classes and CF1 = 2 CP CR / (CP + CR); OP/OR/OF1 pool all labels."""
    if probs.shape != targets.shape:
        raise ValueError(f"probs and targets must have the same shape, got {tuple(probs.shape)} and {tuple(targets.shape)}")
    pred, t = (probs > threshold).float(), targets.float()
    tp, n_pred, n_true = (pred * t).sum(0), pred.sum(0), t.sum(0)
    cp = (tp / n_pred.clamp(min=1)).mean().item()
    cr = (tp / n_true.clamp(min=1)).mean().item()
    op = tp.sum().item() / max(n_pred.sum().item(), 1)
    orr = tp.sum().item() / max(n_true.sum().item(), 1)

    def f1(p, r):
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    return {"CP": 100 * cp, "CR": 100 * cr, "CF1": 100 * f1(cp, cr),
            "OP": 100 * op, "OR": 100 * orr, "OF1": 100 * f1(op, orr)}


def paired_difference(a, b) -> dict[str, float]:
    """A claim "arm ``a`` beats arm ``b``" over seeds, each seed pairing two runs on the
    same data, labels and initialisation: the mean of ``a - b``, its standard deviation
    over seeds (n - 1), the smallest and largest difference, how many seeds have
    ``a > b`` and the number of seeds ``n``."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 1:
        raise ValueError(f"paired scores must be two 1-D sequences of one length (one per seed), got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    d = a - b
    return {"mean": d.mean().item(), "sd": d.std().item() if len(d) > 1 else 0.0, "min": d.min().item(),
            "max": d.max().item(), "agree": int((d > 0).sum()), "n": len(d)}
