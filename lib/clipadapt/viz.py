"""Figures and tables for the chapters (matplotlib), and gluing numbers into the prose."""

from __future__ import annotations

import re
import textwrap
from typing import Sequence

import matplotlib.pyplot as plt
from matplotlib import ticker
import numpy as np
import torch
from IPython.display import HTML

from . import quoted


def glue(name: str, value, display: bool = False):
    """Make ``value`` available to the book's prose as ``{glue:text}`name```.

    Uses myst-nb's glue where it is installed (the book build). Elsewhere (a Colab session,
    a plain Jupyter) the prose's roles show as written, so the value is shown under the cell
    instead, named and formatted as the prose quotes it (:func:`clipadapt.quoted.show`);
    names with a colon (experiments.Lab's records) are not shown there.
    """
    if not quoted.myst_nb_present():
        quoted.show(name, value, display=display)
        return
    from myst_nb import glue as _glue  # lazy: myst-nb comes with jupyter-book (the book extra), absent on Colab

    _glue(name, value, display=display)


def show_images(images: torch.Tensor, titles: Sequence[str] | None = None, ncols: int = 6,
                size: float = 2.1, fontsize: int = 9, wrap: int = 24):
    """A grid of float images ``(N, 3, H, W)`` in [0, 1] with optional titles."""
    n = len(images)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].permute(1, 2, 0).clamp(0, 1).cpu().numpy(), interpolation="nearest")
            if titles is not None:
                ax.set_title("\n".join(textwrap.wrap(titles[i], wrap)), fontsize=fontsize)
    fig.tight_layout()
    return fig


def plot_losses(curves: dict[str, Sequence[float]], floor: float | None = None, smooth: int = 10,
                ylabel: str = "contrastive loss"):
    """Loss curves (moving average over ``smooth`` steps), optionally with a floor line."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for label, values in curves.items():
        v = np.asarray(values, dtype=float)
        if smooth > 1 and len(v) > smooth:
            kernel = np.ones(smooth) / smooth
            v = np.convolve(v, kernel, mode="valid")
            x = np.arange(smooth - 1, smooth - 1 + len(v))
        else:
            x = np.arange(len(v))
        ax.plot(x, v, label=label)
    if floor is not None:
        ax.axhline(floor, color="grey", ls="--", lw=1, label="lowest reachable (entropy of the targets)")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def curves_grid(panels: dict[str, dict[str, Sequence[float]]], ylabel: str = "training loss", ncols: int = 3,
                smooth: int = 5, evaluations: dict[str, dict[str, dict[int, float]]] | None = None,
                eval_label: str = "", width: float = 7.2):
    """Small multiples, one panel per method: each panel holds its runs' curves (``panels[method]
    [run] = loss per step``, e.g. one run per seed), smoothed over ``smooth`` steps, on one
    shared step axis and each panel's own loss axis; ``evaluations[method][run] = {step:
    metric}`` adds the metric evaluated mid-way on a right-hand axis (``eval_label``).
    Sized for the book's column (``width`` inches)."""
    n = len(panels)
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 1.9 * nrows + 0.5), squeeze=False, sharex=True)
    for ax, (title, runs) in zip(axes.flat, panels.items()):
        for i, (label, values) in enumerate(runs.items()):
            v = np.asarray(values, dtype=float)
            x = np.arange(1, len(v) + 1)
            if smooth > 1 and len(v) > 2 * smooth:
                v = np.convolve(v, np.ones(smooth) / smooth, mode="valid")
                x = x[smooth - 1:]
            ax.plot(x, v, lw=1, color=f"C{i}", label=typeset(label, math=True))
        if evaluations and evaluations.get(title):
            twin = ax.twinx()
            for i, (label, points) in enumerate(evaluations[title].items()):
                steps = sorted(points)
                twin.plot(steps, [points[s] for s in steps], ls=":", marker=".", color=f"C{i}", lw=1)
            twin.set_ylabel(eval_label, fontsize=8)
            twin.tick_params(labelsize=7)
        ax.set_title(typeset(title, math=True), fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("step", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if len(labels) > 1:
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, fontsize=8)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
    else:
        fig.tight_layout()
    return fig


def bars_against_chance(groups: dict[str, dict[str, float]], chance: dict[str, float], ylabel="accuracy (%)"):
    """Grouped bars: one group per key of ``chance``, one bar per entry of ``groups``;
    chance drawn as a short black line over each group."""
    names = list(chance)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / max(1, len(groups))
    for j, (label, accs) in enumerate(groups.items()):
        x = np.arange(len(names)) + (j - (len(groups) - 1) / 2) * width
        vals = [100 * accs[n] for n in names]
        bars = ax.bar(x, vals, width, label=label)
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    for i, n in enumerate(names):
        ax.hlines(100 * chance[n], i - 0.45, i + 0.45, color="black", lw=2, label="chance" if i == 0 else None)
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 112)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
    fig.tight_layout()
    return fig


def similarity_matrix(sim: torch.Tensor, images: torch.Tensor, captions: Sequence[str], title: str = ""):
    """Heat map of image-text cosine similarities, with the images along the top and the
    captions down the side (the CLIP paper's figure, for the tiny CLIP)."""
    sim = sim.detach().cpu().numpy()
    n, m = sim.shape
    captions = [c.replace(" and ", "\nand ") for c in captions]  # two-object captions on two lines
    lines = max(c.count("\n") + 1 for c in captions)
    longest = max(len(line) for c in captions for line in c.split("\n"))
    # sized for the book's column (7.2 inches): 7-point captions, the cells share the rest
    row, label = 0.24 * lines + 0.14, 0.058 * longest
    cell = max(0.42, (7.2 - label - 1.0) / n)
    fig = plt.figure(figsize=(label + 1.0 + cell * n, row * m + cell + 0.6))
    grid = fig.add_gridspec(2, 1, height_ratios=[cell, row * m], hspace=0.03)
    top = grid[0].subgridspec(1, n, wspace=0.05)
    for i in range(n):
        ax = fig.add_subplot(top[0, i])
        ax.imshow(images[i].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
        ax.axis("off")
    ax = fig.add_subplot(grid[1])
    im = ax.imshow(sim.T, cmap="viridis", aspect="auto")
    for i in range(n):
        for j in range(m):
            ax.text(i, j, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if sim[i, j] < sim.max() - 0.4 * (sim.max() - sim.min()) else "black")
    ax.set_yticks(range(m), captions, fontsize=7)
    ax.set_xticks([])
    if title:
        ax.set_xlabel(title, fontsize=8)
    bar = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    bar.set_label("cosine similarity", fontsize=7)
    bar.ax.tick_params(labelsize=7)
    return fig


# a variant's superscript as the experiments' labels write it: VoP^P, VoP^F+C
_VARIANT = re.compile(r"(?<=[A-Za-z])\^(F\+[PC]|[PCF])(?![A-Za-z0-9])")


def typeset(text: str, math: bool = False) -> str:
    """``text`` with the variants' carets set as superscripts, as the prose writes them:
    HTML for a table cell or a pasted Markdown line (``"VoP^F+P"`` -> ``"VoP<sup>F+P</sup>"``),
    or ``math=True`` matplotlib's mathtext for a figure's labels (``"VoP$^{\\mathrm{F+P}}$"``)."""
    return _VARIANT.sub(r"$^{\\mathrm{\1}}$" if math else r"<sup>\1</sup>", text)


def table(rows: list[dict], floatfmt: str = "{:.1f}"):
    """A small pandas-free HTML table for notebooks (rendered in the book as HTML); variant
    names are typeset (:func:`typeset`)."""
    if not rows:
        return HTML("<p>(empty)</p>")
    cols = list(rows[0])

    def fmt(v):
        if isinstance(v, float):
            return floatfmt.format(v)
        if isinstance(v, int):
            return f"{v:,}"
        return typeset(str(v))

    cell = "padding:2px 10px;border-bottom:1px solid #ddd;"
    num = cell + "text-align:right;"
    head = "".join(f'<th style="{cell}text-align:left;">{typeset(str(c))}</th>' for c in cols)
    body = "".join(
        "<tr>" + "".join(f'<td style="{num if isinstance(r.get(c), (int, float)) else cell}">{fmt(r.get(c, ""))}</td>'
                         for c in cols) + "</tr>" for r in rows)
    return HTML(f'<table style="border-collapse:collapse;margin:0.5em 0;"><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>")


def merged_patches(ax, image: torch.Tensor, groups: torch.Tensor, show: torch.Tensor | None = None,
                   title: str = "", alpha: float = 0.5):
    """Draw ``image`` ``(3, H, W)`` in [0, 1] with its patch grid coloured by token.

    ``groups`` ``(gh, gw)`` holds, for every patch, the index of the token it went into
    (token merging's provenance); patches of one token share a colour (the colour follows
    the token index, so that several frames of one video can be compared) and are fenced off
    from their neighbours by white lines. Patches where ``show`` ``(gh, gw)`` (bool) is False
    -- by default those that sit alone in their token -- stay uncoloured.
    """
    img = image.permute(1, 2, 0).clamp(0, 1).cpu().numpy()
    h, w = img.shape[:2]
    g = groups.cpu()
    gh, gw = g.shape
    if show is None:
        counts = torch.bincount(g.flatten(), minlength=int(g.max()) + 1)
        show = counts[g] > 1
    colours = plt.get_cmap("tab20")((g.numpy() * 7) % 20)  # (gh, gw, 4), neighbours' ids far apart in colour
    colours[..., 3] = np.where(show.cpu().numpy(), alpha, 0.0)
    ax.imshow(img, extent=(0, w, h, 0), interpolation="nearest")
    ax.imshow(colours, extent=(0, w, h, 0), interpolation="nearest")
    ph, pw = h / gh, w / gw
    for i in range(gh):
        for j in range(gw):
            if j + 1 < gw and g[i, j] != g[i, j + 1]:
                ax.plot([(j + 1) * pw] * 2, [i * ph, (i + 1) * ph], color="white", lw=1)
            if i + 1 < gh and g[i, j] != g[i + 1, j]:
                ax.plot([j * pw, (j + 1) * pw], [(i + 1) * ph] * 2, color="white", lw=1)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def cost_quality_map(panels: dict[str, list[dict]], fronts: dict[str, list[str]], cost: str, value: str = "quality",
                     ylabels: dict[str, str] | None = None, xlabel: str | None = None):
    """One panel per task: each row of ``panels[task]`` a labelled point (``cost`` across,
    on a log scale with zero drawn at its left end, and ``value`` up), the rows named in
    ``fronts[task]`` joined by a line (the Pareto front: nothing is both cheaper and better)."""
    # one panel under the other: the book's column is about 700 px wide
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.6, 4.4 * len(panels)), squeeze=False)
    for ax, (task, rows) in zip(axes.flat, panels.items()):
        front = fronts.get(task, [])
        positive = [r[cost] for r in rows if r[cost] > 0]
        zero = 10 ** np.floor(np.log10(min(positive))) / 10 if positive else 1.0  # where 0 is drawn
        xs = {r["method"]: max(r[cost], zero) for r in rows}
        placed: list[tuple[float, float]] = []  # label anchors in axes fractions, to step around
        has_zero = any(r[cost] <= 0 for r in rows)
        lo, hi = (zero if has_zero else min(positive)) / 2, max(xs.values()) * (30 if has_zero else 6)
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        span = max(r[value] for r in rows) - min(r[value] for r in rows) or 1.0
        ax.set_ylim(min(r[value] for r in rows) - 0.08 * span, max(r[value] for r in rows) + 0.12 * span)
        for r in sorted(rows, key=lambda r: (-r[value], xs[r["method"]])):
            on = r["method"] in front
            x, y = xs[r["method"]], r[value]
            ax.scatter(x, y, s=46 if on else 30, color="C3" if on else "C0", zorder=3)
            fx = (np.log10(x) - np.log10(lo)) / (np.log10(hi) - np.log10(lo))
            fy = (y - ax.get_ylim()[0]) / (ax.get_ylim()[1] - ax.get_ylim()[0])
            dy = 4
            while any(abs(fx - px) < 0.18 and abs(fy + dy / 300 - py) < 0.045 for px, py in placed):
                dy -= 11  # the next line down, in points
            placed.append((fx, fy + dy / 300))
            moved = dy != 4  # stepped down around another label: a thin line back to the point
            ax.annotate(typeset(r["method"], math=True), (x, y), textcoords="offset points",
                        xytext=(12 if moved else 5, dy),
                        fontsize=8, fontweight="bold" if on else "normal", va="center" if moved else "baseline",
                        arrowprops=dict(arrowstyle="-", lw=0.5, color="grey") if moved else None)
        line = sorted((r for r in rows if r["method"] in front), key=lambda r: xs[r["method"]])
        ax.plot([xs[r["method"]] for r in line], [r[value] for r in line], color="C3", lw=1, ls="--",
                label="Pareto front")
        if has_zero:
            ticks = [t for t in ax.get_xticks() if zero < t <= hi]
            ax.set_xticks([zero] + ticks, ["0"] + [f"$10^{{{int(np.log10(t))}}}$" for t in ticks])
        else:  # a narrow range: plain numbers, no crowded minor labels
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel(xlabel or cost)
        ax.set_ylabel((ylabels or {}).get(task, value))
        ax.set_title(task)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8, loc="best")
    fig.tight_layout()
    return fig
