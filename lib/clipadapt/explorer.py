"""Explorers that work on the book's static pages and in a live kernel alike.

``show(fn, shots=[1, 2, 4], layer=range(3))`` calls ``fn`` for EVERY combination of the
controls' values while the chapter executes, keeps what each call shows (printed text,
displayed tables and HTML, matplotlib figures as PNGs ``WIDTH`` = 700 px wide, the book's
column) and displays ONE output with two representations:

* ``text/html``: the precomputed states, native ``<input type="range">`` / ``<select>``
  controls and a few lines of inline JavaScript that show the chosen state: no CDN, no
  external file, no kernel. The book shows it (``_config.yml`` drops widget views).
* ``application/vnd.jupyter.widget-view+json``: the same controls as ipywidgets (what 7.6
  and 8 share; Colab has 7.7.1) re-running ``fn`` in the kernel: what Jupyter and Colab
  show. Without ipywidgets, or outside a kernel, the HTML comes alone.

A control's values: a sequence (numbers get a slider, others a drop-down list) or a dict
``{label: value}`` (a drop-down list). Over ``limit`` states is an error.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
import math
import numbers
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from IPython.core.displaypub import DisplayPublisher
from IPython.core.getipython import get_ipython
from IPython.display import display
from PIL import Image

WIDTH = 700  # px: the book's text column
LIMIT = 64  # states at most, for the page's size


@dataclass
class Control:
    """A parameter, its values and their labels, a slider or not, the index it starts at."""

    name: str
    values: list
    labels: list[str]
    slider: bool
    start: int = 0


def controls_of(controls: dict[str, Any], start: dict | None = None, limit: int = LIMIT) -> list[Control]:
    """``show``'s keyword arguments as controls; ``start`` maps names to first values
    (default: each control's first). More than ``limit`` states is a ``ValueError``."""
    start = dict(start or {})
    if not controls:
        raise ValueError("explorer: give at least one control, e.g. show(fn, shots=[1, 2, 4])")
    if set(start) - set(controls):
        raise ValueError(f"explorer: start names {sorted(set(start) - set(controls))}, not controls {sorted(controls)}")
    out = []
    for name, given in controls.items():
        if isinstance(given, dict):
            labels, values, slider = [str(k) for k in given], list(given.values()), False
        elif isinstance(given, (str, bytes)) or not hasattr(given, "__iter__"):
            raise TypeError(f"explorer: control {name!r} needs a sequence of values or a dict {{label: value}}, "
                            f"got {given!r}")
        else:
            values, labels = list(given), [str(v) for v in given]
            slider = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
        if not values:
            raise ValueError(f"explorer: control {name!r} has no values")
        first = [i for i, v in enumerate(values) if name in start and v == start[name]]
        if name in start and not first:
            raise ValueError(f"explorer: start value {start[name]!r} of {name!r} is not one of its values {labels}")
        out.append(Control(name, values, labels, slider, first[0] if first else 0))
    if (n := math.prod(len(c.values) for c in out)) > limit:
        big = max(out, key=lambda c: len(c.values))
        raise ValueError(f"explorer: the controls give {' x '.join(str(len(c.values)) for c in out)} = {n} states, "
                         f"more than the limit of {limit}: give control {big.name!r} fewer values (it has "
                         f"{len(big.values)}), or pass limit=")
    return out


# -- what a call shows, in order, as nbformat outputs ------------------------------------------
class _Stream(io.TextIOBase):  # consecutive writes make one output
    def __init__(self, name: str, outputs: list):
        self.name, self.outputs = name, outputs

    def write(self, text: str) -> int:
        last = self.outputs[-1] if self.outputs else {}
        if last.get("output_type") == "stream" and last["name"] == self.name:
            last["text"] += text
        else:
            self.outputs.append({"output_type": "stream", "name": self.name, "text": text})
        return len(text)


def figure_output(fig, width: int = WIDTH) -> dict:
    """A figure cropped to what it draws, as a 256-colour PNG ``width`` px wide (octree: small on noise)."""
    box = fig.get_tightbbox().padded(0.1)  # inches
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=width / box.width, bbox_inches=box, facecolor="white")
    image = Image.open(buf).convert("RGB").quantize(256, Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    image.save(buf := io.BytesIO(), format="PNG", optimize=True)
    data, (w, h) = buf.getvalue(), image.size
    return {"output_type": "display_data", "metadata": {"image/png": {"width": w, "height": h}},
            "data": {"image/png": base64.b64encode(data).decode(), "text/plain": f"<Figure {w}x{h}>"}}


@contextmanager
def _capturing(outputs: list, width: int):
    """stdout, stderr, IPython's displays and the figures the call opens, into ``outputs``."""
    class Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, **kwargs):
            outputs.append({"output_type": "display_data", "data": dict(data), "metadata": dict(metadata or {})})

        def clear_output(self, wait=False):
            outputs.clear()

    plt = sys.modules.get("matplotlib.pyplot")  # imported by fn's module if fn draws
    before = set(plt.get_fignums()) if plt else set()

    def flush(*args, **kwargs):  # plt.show()
        for num in sorted(set(plt.get_fignums()) - before):
            outputs.append(figure_output(plt.figure(num), width))
            plt.close(num)

    shell = get_ipython()
    saved = sys.stdout, sys.stderr, getattr(shell, "display_pub", None), plt and plt.show
    sys.stdout, sys.stderr = _Stream("stdout", outputs), _Stream("stderr", outputs)
    if shell is not None:
        shell.display_pub = Publisher(shell=shell)
    if plt:
        plt.show = flush
    try:
        yield
        if plt:
            flush()  # figures drawn but not shown
    finally:
        sys.stdout, sys.stderr = saved[:2]
        if shell is not None:
            shell.display_pub = saved[2]
        if plt:
            plt.show = saved[3]
            for num in set(plt.get_fignums()) - before:  # after an error, too
                plt.close(num)


def capture(fn: Callable, kwargs: dict, width: int = WIDTH) -> list[dict]:
    """What ``fn(**kwargs)`` shows (not its return value)."""
    outputs: list[dict] = []
    with _capturing(outputs, width):
        fn(**kwargs)
    return outputs


# -- the static explorer -----------------------------------------------------------------------
def output_html(out: dict, alt: str = "") -> str:
    """One captured output as HTML: the richest form a page shows without a kernel."""
    text = lambda v: "".join(v) if isinstance(v, list) else v  # nbformat keeps lists of lines
    if out["output_type"] == "stream":
        return f'<pre class="cae-{out["name"]}">{html.escape(text(out["text"]))}</pre>'
    data = out.get("data", {})
    for mime in ("text/html", "image/svg+xml"):
        if mime in data:
            return text(data[mime])
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            width = out.get("metadata", {}).get(mime, {}).get("width")
            width = f' width="{width}"' if width else ""
            return f'<img src="data:{mime};base64,{text(data[mime])}"{width} alt="{html.escape(alt)}">'
    source = next((data[m] for m in ("text/markdown", "text/plain") if m in data), "")
    return f"<pre>{html.escape(text(source))}</pre>"


STYLE = """<style>
.cae-explorer .cae-controls { display: flex; flex-wrap: wrap; gap: 0.4em 1.5em; margin: 0.5em 0; }
.cae-explorer .cae-controls label { display: flex; align-items: center; gap: 0.5em; margin: 0; }
.cae-explorer [hidden] { display: none !important; }
.cae-explorer img { max-width: 100%; height: auto; }
</style>"""

# shows the state of the controls' values; a range's <output> reads out its value's label
SCRIPT = """<script>(function () {
  var root = document.getElementById("%s"), states = root.querySelectorAll("[data-state]");
  var controls = Array.prototype.slice.call(root.querySelectorAll("[data-control]"));
  function update() {
    var key = controls.map(function (c) {
      var out = root.querySelector("output[data-for='" + c.getAttribute("data-control") + "']");
      if (out) out.textContent = JSON.parse(c.getAttribute("data-labels"))[Number(c.value)];
      return c.value;
    }).join("-");
    for (var i = 0; i < states.length; i++) states[i].hidden = states[i].getAttribute("data-state") !== key;
  }
  controls.forEach(function (c) { c.addEventListener("input", update); c.addEventListener("change", update); });
  update();
})();</script>"""


def key_of(indices) -> str:  # the indices of the controls' values, as the script joins them
    return "-".join(str(i) for i in indices)


def control_html(c: Control, uid: str) -> str:
    name, label = html.escape(c.name), html.escape(c.name.replace("_", " "))
    attrs = f'data-control="{name}" id="{uid}-{name}" autocomplete="off"'
    if c.slider:
        return (f'<label>{label} <input type="range" {attrs} min="0" max="{len(c.values) - 1}" step="1" '
                f'value="{c.start}" data-labels="{html.escape(json.dumps(c.labels))}"> '
                f'<output data-for="{name}">{html.escape(c.labels[c.start])}</output></label>')
    options = "".join(f'<option value="{i}"{" selected" if i == c.start else ""}>{html.escape(text)}</option>'
                      for i, text in enumerate(c.labels))
    return f"<label>{label} <select {attrs}>{options}</select></label>"


def page_html(controls: list[Control], states: dict[str, list[dict]], uid: str) -> str:
    """The self-contained explorer: controls, every state (all but the start hidden) and the
    script that shows the chosen one."""
    first = key_of(c.start for c in controls)
    parts = [f'<div class="cae-explorer" id="{uid}">', STYLE, '<div class="cae-controls">',
             *(control_html(c, uid) for c in controls), "</div>"]
    for indices in itertools.product(*(range(len(c.values)) for c in controls)):
        key = key_of(indices)
        alt = ", ".join(f"{c.name} = {c.labels[i]}" for c, i in zip(controls, indices))
        body = "".join(output_html(o, alt) for o in states[key])
        parts.append(f'<div class="cae-state" data-state="{key}"{"" if key == first else " hidden"}>{body}</div>')
    return "\n".join(parts + [SCRIPT % uid, "</div>"])


# -- the live explorer -------------------------------------------------------------------------
def live_widget(fn: Callable, controls: list[Control], outputs: list[dict], width: int = WIDTH):
    """ipywidgets' controls and an ``Output`` that starts with ``outputs`` (the start state)
    and shows ``fn``'s again at each change."""
    import ipywidgets as widgets  # lazy: optional; without it the page's HTML comes alone

    boxes = []
    for c in controls:
        kw = {"options": list(zip(c.labels, range(len(c.values)))), "value": c.start,
              "description": c.name.replace("_", " "), "style": {"description_width": "initial"}}
        boxes.append(widgets.SelectionSlider(continuous_update=False, **kw) if c.slider else widgets.Dropdown(**kw))
    out = widgets.Output()
    out.outputs = tuple(outputs)

    def update(change=None):
        try:
            shown = capture(fn, {c.name: c.values[b.value] for c, b in zip(controls, boxes)}, width)
        except Exception:
            out.outputs = ()
            with out:  # in a kernel, the Output shows the traceback
                raise
            return
        out.outputs = tuple(shown)

    for b in boxes:
        b.observe(update, names="value")
    return widgets.VBox([*boxes, out])


_count = itertools.count()


class Explorer:
    """``fn``'s states for every combination of the controls, displayed as one output;
    ``live``: make the ipywidgets version (default: where ipywidgets and a kernel are)."""

    def __init__(self, fn: Callable, *, start: dict | None = None, limit: int = LIMIT, width: int = WIDTH,
                 live: bool | None = None, **controls):
        self.fn, self.controls = fn, controls_of(controls, start, limit)
        combos = itertools.product(*(range(len(c.values)) for c in self.controls))
        self.states = {key_of(ix): capture(fn, {c.name: c.values[i] for c, i in zip(self.controls, ix)}, width)
                       for ix in combos}
        self.uid = f"cae-explorer-{next(_count)}-{hashlib.sha1(json.dumps(self.states).encode()).hexdigest()[:8]}"
        self.html = page_html(self.controls, self.states, self.uid)
        self.widget = None
        if live or (live is None and getattr(get_ipython(), "kernel", None) is not None):
            try:
                first = self.states[key_of(c.start for c in self.controls)]
                self.widget = live_widget(fn, self.controls, first, width)
            except ImportError:
                if live:
                    raise

    def _repr_mimebundle_(self, include=None, exclude=None):
        sizes = ", ".join(f"{c.name}: {len(c.values)}" for c in self.controls)
        bundle = {"text/plain": f"<explorer of {getattr(self.fn, '__name__', 'fn')} ({sizes} values)>",
                  "text/html": self.html}
        if self.widget is not None:
            bundle["application/vnd.jupyter.widget-view+json"] = {
                "version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}
        return bundle


def show(fn: Callable, **kwargs) -> None:
    """Call ``fn`` for every combination of the controls' values and display the explorer
    (:class:`Explorer`'s arguments), e.g. ``show(explore, shots=[1, 2, 4], start={"shots": 4})``."""
    display(Explorer(fn, **kwargs))
