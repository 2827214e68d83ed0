"""Losses: contrastive (CLIP) and partial-label (multi-label with unknown labels).

CLIP's objective is a symmetric cross-entropy over the batch's similarity matrix: each
image must pick out its own caption among all captions of the batch, and each caption its
own image (chapter 1 derives it). When several captions of a batch are true of the same
picture -- templated captions repeat -- the identity target punishes the model for being
right. ``positives`` replaces the identity by any boolean matrix of true pairs, and the
target of each row spreads evenly over its positives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_targets(positives: torch.Tensor) -> torch.Tensor:
    """Rows of a boolean matrix normalised into probability distributions."""
    if positives.ndim != 2:
        raise ValueError(f"positives must be a (B, B) matrix, got shape {tuple(positives.shape)}")
    counts = positives.sum(1, keepdim=True)
    if (counts == 0).any():
        rows = (counts.flatten() == 0).nonzero().flatten().tolist()
        raise ValueError(f"every row of positives needs at least one True entry; rows {rows[:10]} have none")
    return positives.float() / counts


def clip_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor | float,
    positives: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE between L2-normalised features.

    ``positives[i, j]`` (optional, bool, shape (B, B)) says that caption ``j`` is true of
    image ``i``; by default only the diagonal is. Returns the mean of the image-to-text and
    text-to-image cross-entropies.
    """
    if image_features.shape != text_features.shape:
        raise ValueError(
            f"image and text features must have the same shape, got {tuple(image_features.shape)} "
            f"and {tuple(text_features.shape)}"
        )
    image_features = F.normalize(image_features, dim=-1)
    text_features = F.normalize(text_features, dim=-1)
    logits = logit_scale * image_features @ text_features.t()  # (B images, B texts)
    if positives is None:
        labels = torch.arange(len(logits), device=logits.device)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
    if positives.shape != logits.shape:
        raise ValueError(f"positives must have shape {tuple(logits.shape)}, got {tuple(positives.shape)}")
    positives = positives.to(logits.device)
    i2t = soft_targets(positives)
    t2i = soft_targets(positives.t())
    return (F.cross_entropy(logits, i2t) + F.cross_entropy(logits.t(), t2i)) / 2


def caption_positives(captions: list[str]) -> torch.Tensor:
    """``(B, B)`` bool: pairs with identical captions count as positives of each other
    (templated captions repeat inside a batch; see chapter 1)."""
    index = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    ids = torch.tensor([index[c] for c in captions])
    return ids[:, None] == ids[None, :]


# -- partial-label losses (chapter 6) -------------------------------------------------------
# ``observed`` (B, C) holds 1 (known positive), -1 (known negative) or 0 (unknown); the
# losses are summed over the batch and the classes, as SCPNet's code does.
def _check_observed(logits: torch.Tensor, observed: torch.Tensor) -> None:
    if logits.shape != observed.shape or logits.ndim != 2:
        raise ValueError(f"logits and observed labels must both be (B, C), got {tuple(logits.shape)} "
                         f"and {tuple(observed.shape)}")


def masked_bce(logits: torch.Tensor, observed: torch.Tensor, epoch: int = 0) -> torch.Tensor:
    """Binary cross-entropy on the known labels only; unknown labels give no gradient."""
    _check_observed(logits, observed)
    known = (observed != 0).float()
    return (F.binary_cross_entropy_with_logits(logits, (observed > 0).float(), reduction="none") * known).sum()


def partial_bce(logits: torch.Tensor, observed: torch.Tensor, epoch: int = 0) -> torch.Tensor:
    """Masked BCE rescaled by ``B * C / known`` (the partial-BCE normalisation of Durand et
    al., 2019): the total weight of the known labels equals that of a fully labelled batch,
    so a loss added beside it (SCPNet's self-supervision, summed over every label) keeps
    the same relative weight whatever the proportion of labels kept."""
    _check_observed(logits, observed)
    known = int((observed != 0).sum())
    return masked_bce(logits, observed) * (observed.numel() / max(known, 1))


def assume_negative(logits: torch.Tensor, observed: torch.Tensor, epoch: int = 0) -> torch.Tensor:
    """Binary cross-entropy with every unknown label taken as a negative ("AN")."""
    _check_observed(logits, observed)
    return F.binary_cross_entropy_with_logits(logits, (observed > 0).float(), reduction="sum")


def splc(logits: torch.Tensor, observed: torch.Tensor, epoch: int = 0, tau: float = 0.6, change_epoch: int = 1,
         margin: float = 1.0, gamma: float = 2.0) -> torch.Tensor:
    """SPLC (Zhang et al., 2021), SCPNet's default: focal loss with a margin on the
    positives' logits, unknown labels taken as negatives, and from epoch ``change_epoch``
    on, every label that is not a known negative and whose probability exceeds ``tau``
    corrected to a positive. (SCPNet's single-positive code has no known negatives; here they
    are never corrected.)"""
    _check_observed(logits, observed)
    target = (observed > 0).float()
    logits = torch.where(target > 0, logits - margin, logits)
    if epoch >= change_epoch:
        flip = (torch.sigmoid(logits) > tau) & (observed >= 0)
        target = torch.where(flip, torch.ones_like(target), target)
    p = torch.sigmoid(logits)
    focal = ((1 - p) * target + p * (1 - target)) ** gamma
    return (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * focal).sum()
