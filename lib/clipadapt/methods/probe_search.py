"""The official linear probe's fit: scikit-learn's L-BFGS logistic regression, its inverse L2
strength C searched on a validation split (CoOp's ``lpclip/linear_probe.py``, which SoftCPT's
``lpclip/linear_probe.py`` repeats per task).

The search, as the official file runs it (KaiyangZhou/CoOp lpclip/linear_probe.py):

1. fit at each C of :data:`C_GRID` (:54-60) and keep the first C of the best validation score;
2. eight rounds (``--num_step`` 8, :8) between ``C / 10`` and ``10 C`` (:64-67): fit at both
   ends; the better end (the left one on a tie, :80-91) is the round's choice, and the next
   round runs between it and the two ends' geometric mean;
3. the last round's choice is the probe (:118-119 report its test accuracy).

Each fit is ``LogisticRegression(solver="lbfgs", max_iter=1000, C=C)`` with scikit-learn's
default L2 penalty (:57). The validation split holds ``min(shots, 4)`` pictures per class
(``val_shot_list``, :25). The features are CLIP's image features as the encoder gives them,
not normalised (lpclip/feat_extractor.py:155).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

C_GRID = (1e6, 1e4, 1e2, 1.0, 1e-2, 1e-4, 1e-6)  # linear_probe.py:54
ROUNDS = 8  # linear_probe.py:8 (--num_step)
MAX_ITER = 1000  # linear_probe.py:57
VAL_SHOTS_MAX = 4  # linear_probe.py:25: {1: 1, 2: 2, 4: 4, 8: 4, 16: 4}


def val_shots(shots: int) -> int:
    """Validation pictures per class for a probe of ``shots``: ``min(shots, 4)``."""
    if shots < 1:
        raise ValueError(f"shots must be at least 1, got {shots}")
    return min(shots, VAL_SHOTS_MAX)


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(pred == y))


def fit_one(c: float, x: np.ndarray, y: np.ndarray):
    """One official fit: L-BFGS logistic regression with inverse L2 strength ``c``."""
    from sklearn.linear_model import LogisticRegression  # lazy: a second to import; only this probe needs it

    return LogisticRegression(solver="lbfgs", max_iter=MAX_ITER, C=c).fit(x, y)


@dataclass
class Search:
    """The search's result: the chosen ``c``, its fitted ``classifier`` (scikit-learn's), and
    every C tried with its validation score, in order."""

    c: float
    classifier: Any
    tried: list[tuple[float, float]] = field(default_factory=list)


def search(x: np.ndarray, y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, rounds: int = ROUNDS,
           score: Callable[[np.ndarray, np.ndarray], float] = accuracy) -> Search:
    """Fit the official probe on features ``x (N, D)`` and labels ``y (N,)``, choosing C on
    ``val_x``, ``val_y`` by ``score(predictions, labels)`` (see the module)."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    x, val_x = np.asarray(x, dtype=np.float64), np.asarray(val_x, dtype=np.float64)
    y, val_y = np.asarray(y), np.asarray(val_y)
    tried = []

    def fit_and_score(c: float):
        clf = fit_one(c, x, y)
        tried.append((c, score(clf.predict(val_x), val_y)))
        return clf, tried[-1][1]

    scores = [fit_and_score(c)[1] for c in C_GRID]
    best = C_GRID[int(np.argmax(scores))]  # the first of the best
    left, right = best / 10, best * 10
    chosen = None
    for _ in range(rounds):
        (clf_left, s_left), (clf_right, s_right) = fit_and_score(left), fit_and_score(right)
        middle = 10 ** (0.5 * (math.log10(left) + math.log10(right)))
        if s_left < s_right:
            chosen = Search(right, clf_right)
            left = middle
        else:
            chosen = Search(left, clf_left)
            right = middle
    chosen.tried = tried
    return chosen


def weights(classifier, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The classifier as a linear layer over all ``n_classes``: weights ``(C, D)`` and biases
    ``(C,)`` whose argmax is its prediction (a two-class fit keeps one row: the other is 0;
    a class absent from the training labels gets -inf)."""
    coef, intercept = np.asarray(classifier.coef_, np.float64), np.asarray(classifier.intercept_, np.float64)
    classes = np.asarray(classifier.classes_)
    w = np.zeros((n_classes, coef.shape[1]))
    b = np.full(n_classes, -np.inf)
    if len(classes) == 2:  # decision x.w + b > 0 picks classes[1]; a tie picks classes[0], as argmax does
        w[classes[1]], b[classes[1]], b[classes[0]] = coef[0], intercept[0], 0.0
    else:
        w[classes], b[classes] = coef, intercept
    return w, b
