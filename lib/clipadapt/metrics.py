"""Evaluation: zero-shot classification accuracy and retrieval recall."""

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
    r = ranks(sim).float()
    out = {f"R@{k}": 100.0 * (r <= k).float().mean().item() for k in ks}
    out["MdR"] = r.quantile(0.5).item()  # the mean of the two middle ranks when their number is even
    out["MnR"] = r.mean().item()
    out["R-Sum"] = sum(out[f"R@{k}"] for k in ks)  # R@1 + R@5 + R@10 by default, as in the TempMe paper
    return out


def image_text_retrieval(image_features: torch.Tensor, text_features: torch.Tensor, ks=(1, 5, 10)) -> dict[str, dict[str, float]]:
    """Both directions for paired features (row i of each belongs together)."""
    sim = zero_shot_logits(image_features, text_features)
    return {"image_to_text": retrieval_metrics(sim, ks), "text_to_image": retrieval_metrics(sim.t(), ks)}
