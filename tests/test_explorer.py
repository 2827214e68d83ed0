"""clipadapt.explorer: every state computed when the chapter runs, one self-contained HTML
explorer for the page (no URL, no kernel; its script shows the chosen state, checked in
headless Chromium), the ipywidgets version for a live kernel, and bounded states."""

import base64
import importlib.util
import itertools
import os
import re
import shutil
import struct
import sys

import matplotlib.pyplot as plt
import pytest
from clipadapt import explorer
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import HTML, display


@pytest.fixture
def shell():
    """An IPython shell, as a chapter's kernel has (display() goes through its publisher)."""
    InteractiveShell.clear_instance()
    sh = InteractiveShell.instance()
    yield sh
    InteractiveShell.clear_instance()


def draw(a, b):
    """Shows text, a table and a figure, in that order, all depending on both values."""
    print(f"a={a} b={b}")
    display(HTML(f"<table><tr><td>{a * 10}</td><td>{b}</td></tr></table>"))
    _, ax = plt.subplots(figsize=(9, 3))
    ax.plot([0, a], [0, 1])
    ax.set_title(b)
    plt.show()
    print("done")


def test_every_combination_is_computed_and_kept_in_order(shell):
    calls = []

    def fn(a, b):
        calls.append((a, b))
        draw(a, b)

    ex = explorer.Explorer(fn, a=[1, 2, 3], b={"left": "L", "right": "R"}, live=False)
    assert sorted(calls) == sorted(itertools.product([1, 2, 3], ["L", "R"]))
    assert set(ex.states) == {f"{i}-{j}" for i in range(3) for j in range(2)}
    for (i, a), (j, b) in itertools.product(enumerate([1, 2, 3]), enumerate("LR")):
        outs = ex.states[f"{i}-{j}"]
        kinds = [o.get("name") or next(m for m in ("text/html", "image/png") if m in o["data"]) for o in outs]
        assert kinds == ["stdout", "text/html", "image/png", "stdout"]
        assert outs[0]["text"] == f"a={a} b={b}\n" and f"<td>{a * 10}</td>" in outs[1]["data"]["text/html"]
    assert not plt.get_fignums()  # every figure closed


def test_figures_are_pngs_of_the_column_width(shell):
    ex = explorer.Explorer(draw, a=[1], b=["x"], live=False)
    png = next(o for o in ex.states["0-0"] if "image/png" in o.get("data", {}))
    data = base64.b64decode(png["data"]["image/png"])
    width = struct.unpack(">I", data[16:20])[0]
    assert 600 <= width <= explorer.WIDTH + 20 and png["metadata"]["image/png"]["width"] == width
    assert re.search(rf'<img src="data:image/png;base64,[^"]+" width="{width}" alt="a = 1, b = x">', ex.html)


def test_figures_left_unshown_are_kept_and_closed_after_an_error(shell):
    def unshown(k):
        _, ax = plt.subplots()
        ax.plot([0, k])

    ex = explorer.Explorer(unshown, k=[1, 2], live=False)
    assert all(any("image/png" in o.get("data", {}) for o in outs) for outs in ex.states.values())

    def broken(k):
        plt.subplots()
        raise RuntimeError(f"broken at {k}")

    with pytest.raises(RuntimeError, match="broken at 1"):
        explorer.Explorer(broken, k=[1, 2], live=False)
    assert not plt.get_fignums() and not isinstance(sys.stdout, explorer._Stream)


def test_the_html_is_self_contained(shell):
    ex = explorer.Explorer(draw, a=[1, 2], b=["x", "y"], live=False)
    assert ex.html.count('src="data:image/png;base64,') == 4
    readable = re.sub(r'"data:image/png;base64,[A-Za-z0-9+/=]+"', '"data:"', ex.html)  # base64 may spell anything
    assert "http" not in readable.lower() and "//" not in readable and "url(" not in readable
    assert not re.findall(r"""(?:src|href)=["'](?!data:)""", ex.html)  # only data: URIs
    assert ex.html.count("<script>") == 1 and "<link" not in ex.html
    shown = re.findall(r'<div class="cae-state" data-state="([^"]+)"( hidden)?>', ex.html)
    assert [k for k, hidden in shown if not hidden] == ["0-0"] and len(shown) == 4


def test_controls_start_where_asked_and_become_sliders_or_lists(shell):
    ex = explorer.Explorer(draw, a=[1, 2, 4], b=["x", "y"], start={"a": 4, "b": "y"}, live=False)
    assert re.search(r'<input type="range" data-control="a"[^>]* min="0" max="2" step="1" value="2"', ex.html)
    assert re.search(r'<select data-control="b"[^>]*><option value="0">x</option><option value="1" selected>y',
                     ex.html)
    assert re.findall(r'data-state="([^"]+)">', ex.html) == ["2-1"]  # the one state not hidden
    bundle = ex._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"} and "a: 3, b: 2" in bundle["text/plain"]


def test_bad_controls_are_named():
    def fn(**kw):
        pass

    with pytest.raises(ValueError, match=r"7 x 10 = 70 states, more than the limit of 64: give control 'frame'"):
        explorer.Explorer(fn, layer=range(7), frame=range(10))
    assert len(explorer.Explorer(fn, layer=range(7), frame=range(10), limit=70, live=False).states) == 70
    with pytest.raises(ValueError, match="control 'a' has no values"):
        explorer.Explorer(fn, a=[])
    with pytest.raises(TypeError, match="control 'a' needs a sequence"):
        explorer.Explorer(fn, a="abc")
    with pytest.raises(ValueError, match=r"start value 5 of 'a' is not one of its values \['1', '2'\]"):
        explorer.Explorer(fn, a=[1, 2], start={"a": 5})
    with pytest.raises(ValueError, match=r"start names \['b'\]"):
        explorer.Explorer(fn, a=[1, 2], start={"b": 1})
    with pytest.raises(ValueError, match="at least one control"):
        explorer.Explorer(fn)


def test_the_live_version_reruns_fn_in_the_kernel(shell):
    pytest.importorskip("ipywidgets")
    calls = []

    def fn(a, b):
        calls.append((a, b))
        draw(a, b)

    ex = explorer.Explorer(fn, a=[1, 2], b=["x", "y"], start={"b": "y"}, live=True)
    view = ex._repr_mimebundle_()["application/vnd.jupyter.widget-view+json"]
    assert view == {"version_major": 2, "version_minor": 0, "model_id": ex.widget.model_id}
    *boxes, out = ex.widget.children
    assert [type(b).__name__ for b in boxes] == ["SelectionSlider", "Dropdown"]
    assert out.outputs[0]["text"] == "a=1 b=y\n" and len(calls) == 4  # the start state, not run again
    boxes[0].value = 1  # the reader moves the slider
    assert calls[-1] == (2, "y") and out.outputs[0]["text"] == "a=2 b=y\n" and len(out.outputs) == 4


def test_without_ipywidgets_the_html_comes_alone(shell, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets raises ImportError
    monkeypatch.setattr(shell, "kernel", object(), raising=False)  # as in a chapter's kernel
    ex = explorer.Explorer(draw, a=[1, 2], b=["x"])
    assert ex.widget is None and set(ex._repr_mimebundle_()) == {"text/plain", "text/html"}
    with pytest.raises(ImportError):
        explorer.Explorer(draw, a=[1, 2], b=["x"], live=True)


def test_show_displays_one_output_with_both_forms(shell, monkeypatch):
    pytest.importorskip("ipywidgets")
    monkeypatch.setattr(shell, "kernel", object(), raising=False)
    published = []
    monkeypatch.setattr(shell.display_pub, "publish", lambda data, metadata=None, **kw: published.append(data))
    explorer.show(draw, a=[1, 2], b=["x"])
    assert len(published) == 1
    assert {"text/html", "application/vnd.jupyter.widget-view+json"} <= set(published[0])


# -- the script, in a browser ------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _browser():
    """Playwright driving the system's Chromium, as tests/test_book.py does (.ci/run installs
    Debian's chromium and sets CLIPADAPT_REQUIRE_BROWSER, so CI never skips)."""
    if CHROMIUM is None or importlib.util.find_spec("playwright") is None:
        if os.environ.get("CLIPADAPT_REQUIRE_BROWSER"):
            pytest.fail("no Chromium or no playwright: .ci/run installs both")
        pytest.skip("no headless Chromium or playwright here")
    from playwright import sync_api

    return sync_api


def test_the_script_shows_the_chosen_state(shell, tmp_path):
    pw = _browser()
    ex = explorer.Explorer(draw, a=[1, 2, 3], b=["x", "y"], start={"a": 2}, live=False)
    page_file = tmp_path / "page.html"
    page_file.write_text(f"<!doctype html><html><body>{ex.html}</body></html>")
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_file.as_uri())

        def visible():
            return page.eval_on_selector_all("[data-state]", "els => els.filter(e => !e.hidden).map("
                                             "e => [e.dataset.state, e.querySelector('pre').textContent])")

        assert visible() == [["1-0", "a=2 b=x\n"]]
        assert page.text_content("output") == "2"
        for a, b in [(0, 1), (2, 1), (2, 0)]:
            page.eval_on_selector("input[data-control=a]", "(e, v) => { e.value = v; "
                                  "e.dispatchEvent(new Event('input', {bubbles: true})); }", str(a))
            page.select_option("select[data-control=b]", str(b))
            assert visible() == [[f"{a}-{b}", f"a={[1, 2, 3][a]} b={'xy'[b]}\n"]]
            assert page.text_content("output") == str([1, 2, 3][a])
        browser.close()
    assert not errors and [u for u in requests if not u.startswith(("file:", "data:"))] == []


# -- in a real kernel, as Jupyter and Colab run it ------------------------------------------
KERNEL_CELL = """
import matplotlib
matplotlib.use("Agg")
from clipadapt import explorer

def fn(a, b):
    print(f"a={a} b={b}")

explorer.show(fn, a=[1, 2, 3], b=["x", "y"])
"""


def test_in_a_kernel_one_output_carries_both_and_the_widget_reruns_fn():
    """A kernel (ipykernel, ipywidgets as installed: 8 here; the same cell passes with
    Colab's 7.7.1 on the path): the cell displays one output with the HTML and the widget
    view, and a frontend's move of the slider (a comm message) makes the kernel call ``fn``
    again and send the new output."""
    pytest.importorskip("ipywidgets")
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=120)
    try:
        msg_id = kc.execute(KERNEL_CELL)
        shown, opened = [], {}
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            kind, content = msg["msg_type"], msg["content"]
            if kind == "display_data":
                shown.append(content["data"])
            elif kind == "comm_open":
                opened[content["data"]["state"]["_model_name"]] = content["comm_id"]
            elif kind == "error":
                pytest.fail("\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle" \
                    and msg["parent_header"].get("msg_id") == msg_id:
                break
        assert len(shown) == 1, shown
        assert {"text/plain", "text/html", "application/vnd.jupyter.widget-view+json"} == set(shown[0])
        assert shown[0]["application/vnd.jupyter.widget-view+json"]["model_id"] == opened["VBoxModel"]
        # the frontend moves the slider to a = 3: ipywidgets' protocol 2 update of its index
        update = kc.session.msg("comm_msg", {"comm_id": opened["SelectionSliderModel"], "data": {
            "method": "update", "state": {"index": 2}, "buffer_paths": []}})
        kc.shell_channel.send(update)
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            state = msg["content"].get("data", {}).get("state", {})
            if msg["msg_type"] == "comm_msg" and msg["content"]["comm_id"] == opened["OutputModel"] \
                    and "outputs" in state:
                break
        assert [o.get("text") for o in state["outputs"]] == ["a=3 b=x\n"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
