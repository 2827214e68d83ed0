"""Every chapter executed by papermill under the tiny profile, then the book built from the
executed copies with warnings as errors, and the rendered pages checked."""

import functools
import json
import http.server
import re
import threading
from pathlib import Path

import nbformat
import pytest

from clipadapt import profiles
from clipadapt import book, citations, quoted

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.book


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """The chapters executed under tiny and the book built from them. With
    ``CLIPADAPT_BOOK_DIR=FOLDER`` the build is kept there and a later session reuses it
    (to rerun the page checks alone: ``pytest tests/test_book.py -k browser``); delete the
    folder to execute again."""
    import json
    import os

    keep = os.environ.get("CLIPADAPT_BOOK_DIR")
    out = Path(keep) if keep else tmp_path_factory.mktemp("book")
    done = out / "built.json"
    if keep and done.is_file():
        saved = json.loads(done.read_text())
        executed = [book.Executed(e["notebook"], e["seconds"]) for e in saved["executed"]]
        return {"exec": out / "exec", "html": Path(saved["html"]), "executed": executed}
    # the kernels train an experiment's runs two side by side, as on the development machine
    # (clipadapt.experiments.lab.workers; conftest sets one for the other tests): the
    # bit-for-bit check below then compares forked runs with reproduce's
    before = os.environ.get("CLIPADAPT_LAB_WORKERS")
    os.environ["CLIPADAPT_LAB_WORKERS"] = "2"
    try:
        executed = book.execute("tiny", dest=out / "exec", root=ROOT)
    finally:
        if before is None:
            os.environ.pop("CLIPADAPT_LAB_WORKERS")
        else:
            os.environ["CLIPADAPT_LAB_WORKERS"] = before
    html = book.build_html(src=out / "exec", out=out, root=ROOT)
    if keep:
        done.write_text(json.dumps({"html": str(html), "executed": [
            {"notebook": str(e.notebook), "seconds": e.seconds} for e in executed]}))
    return {"exec": out / "exec", "html": html, "executed": executed}


def test_every_chapter_executed(built):
    names = {Path(e.notebook).name for e in built["executed"]}
    assert names == {p.name for p in book.toc_notebooks(ROOT)}


@pytest.mark.parametrize("nb_path", book.toc_notebooks(ROOT), ids=lambda p: p.stem)
def test_executed_notebook_has_no_errors_and_ran_tiny(built, nb_path):
    nb = nbformat.read(built["exec"] / nb_path, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "profile = \"tiny\"" in injected[0].source
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"cell {i}: {out.get('ename')}: {out.get('evalue')}"
            if out.output_type == "stream" and out.name == "stderr":
                assert "Traceback" not in out.text and "Warning" not in out.text, f"cell {i}: {out.text[:500]}"
    assert citations.figure_problems(nb) == [], "a captioned cell shows several outputs: one figure name twice"


@pytest.mark.parametrize("nb_path", book.toc_notebooks(ROOT), ids=lambda p: p.stem)
def test_chapter_page_shows_figures_and_no_errors(built, nb_path):
    page = built["html"] / nb_path.with_suffix(".html")
    html = page.read_text()
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', html)
    embedded = len(re.findall(r'<img[^>]+src="data:image/png;base64,', html))  # an explorer's states
    assert len(images) + embedded >= 3, f"{page.name} shows {len(images)} figures and {embedded} explorer pictures"
    for src in images:
        assert (page.parent / src).resolve().exists(), src
    assert "Traceback (most recent call last)" not in html
    assert "output traceback" not in html and "output error" not in html
    assert "colab.research.google.com" in html  # the launch button
    assert "No pretrained weights" not in html
    # a glued paragraph or table pasted by {glue:text} shows only its object's name
    assert "IPython.core.display" not in html


def test_book_front_and_back_matter(built):
    html = built["html"]
    assert (html / "index.html").exists()
    bib = (html / "book" / "bibliography.html").read_text().lower()  # the style sets titles in sentence case
    for key in ("Learning Transferable Visual Models", "VoP", "TempMe", "Token Merging", "CLIP4Clip",
                "Visual Prompt Tuning", "LoRA", "Learning to Prompt", "Structured Semantic Prior", "Soft Context Sharing"):
        assert key.lower() in bib, key


def test_each_page_loads_each_script_once(built):
    """book/_ext/page_fixes.py: sphinx-thebe's inline configuration (and any other script)
    appears once per page; twice, its `const` declarations fail in the browser."""
    for page in sorted(built["html"].rglob("*.html")):
        scripts = re.findall(r"<script\b[^>]*>.*?</script>", page.read_text(), flags=re.S)
        repeated = {s[:120] for s in scripts if scripts.count(s) > 1}
        assert not repeated, f"{page.relative_to(built['html'])}: scripts repeated: {sorted(repeated)}"


def test_math_is_served_by_the_book_itself(built):
    """MathJax comes from the book's own static files (sphinx-mathjax-offline, pinned), not
    from a CDN: a page opened without a network still renders its formulas."""
    html = built["html"]
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    for page in sorted(html.rglob("*.html")):
        sources = re.findall(r'<script[^>]+src="([^"]+)"', page.read_text())
        remote = [s for s in sources if "mathjax" in s.lower() and re.match(r"([a-z]+:)?//", s)]
        assert not remote, f"{page.relative_to(html)} loads MathJax from {remote}"


def test_the_script_filter_keeps_the_first_of_each():
    import sys

    from sphinx.builders.html._assets import _JavaScript

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import page_fixes
    finally:
        sys.path.remove(str(ROOT / "book" / "_ext"))
    config = 'const THEBE_JS_URL = "x"'
    scripts = [_JavaScript(None, body=config), _JavaScript("a.js"), _JavaScript("", body=config),
               _JavaScript("a.js", **{"async": "async"}), _JavaScript("a.js"), _JavaScript(None, body="other")]
    context = {"script_files": scripts}
    page_fixes.drop_repeated_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] == [scripts[0], scripts[1], scripts[3], scripts[5]]
    assert [s.attributes for s in context["script_files"]] == [scripts[i].attributes for i in (0, 1, 3, 5)]


def test_the_widget_state_is_left_off_the_pages():
    """book/_ext/page_fixes.py: the state papermill saves for the explorers' live widgets
    is not written into the pages, which show the explorers' own HTML."""
    import sys

    from sphinx.builders.html._assets import _JavaScript

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import page_fixes
    finally:
        sys.path.remove(str(ROOT / "book" / "_ext"))
    state = _JavaScript(None, body="{}", type="application/vnd.jupyter.widget-state+json")
    scripts = [_JavaScript("a.js"), state, _JavaScript(None, body="x = 1")]
    context = {"script_files": scripts}
    page_fixes.drop_widget_state(None, "page", "page.html", context, None)
    assert context["script_files"] == [scripts[0], scripts[2]]


CHROMIUM = next((c for c in ("chromium", "chromium-browser", "google-chrome") if __import__("shutil").which(c)), None)
REQUIRE_BROWSER = bool(__import__("os").environ.get("CLIPADAPT_REQUIRE_BROWSER"))  # .ci/run sets it


def _browser():
    if CHROMIUM is None:
        if REQUIRE_BROWSER:
            pytest.fail("no Chromium: .ci/run installs Debian's chromium package (apt-get install chromium)")
        pytest.skip("no headless Chromium here (Debian package 'chromium'; .ci/run installs it)")
    return pytest.importorskip("playwright.sync_api") if not REQUIRE_BROWSER else __import__("playwright.sync_api").sync_api


EXPLORER_CHAPTERS = {"02_adapting_clip", "04_vop", "05_tempme"}  # chapters with a clipadapt.explorer


@pytest.fixture(scope="module")
def served(built):
    """The built pages over HTTP on 127.0.0.1 (a reader's browser sees a web server, not
    file:// pages, on which the theme cannot keep its settings)."""
    handler = functools.partial(QuietHandler, directory=str(built["html"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _math_problems(page, name: str) -> list[str]:
    """Every formula of the page typeset by MathJax (its ``mjx-container`` elements), and no
    raw TeX delimiters left in the page's text."""
    formulas = page.locator("main .math").count()
    if not formulas:
        return []
    try:
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                               timeout=20_000)
        page.evaluate("() => MathJax.startup.promise")
    except Exception as exc:  # playwright's TimeoutError, or a failed promise
        return [f"{name}: MathJax did not start ({type(exc).__name__}: {str(exc)[:120]})"]
    rendered = page.locator("main mjx-container").count()
    problems = [] if rendered >= formulas else [f"{name}: {rendered} of {formulas} formulas rendered"]
    text = " ".join(page.locator("main .math").all_inner_texts())  # typeset: no TeX source left
    raw = [d for d in ("\\(", "\\[", "\\mathrm") if d in text]
    if raw:
        problems.append(f"{name}: raw TeX left on the page: {raw}")
    return problems


def _explorer_problems(page, name: str) -> list[str]:
    """The chapter's one explorer (clipadapt.explorer's text/html form): every control set to
    each of its values in turn, as a reader's drag or pick does (the value, then the
    ``input`` and ``change`` events), shows exactly one state, the one of the controls'
    values, and what it shows changes with each move."""
    explorers = page.locator("main .cae-explorer")
    if explorers.count() != 1:
        return [f"{name}: {explorers.count()} explorers (one expected)"]
    root = explorers.first
    shown = "root => [...root.querySelectorAll('[data-state]')].filter(e => !e.hidden && e.offsetHeight > 0)" \
            ".map(e => [e.dataset.state, e.innerHTML])"
    move = "(e, v) => { e.value = v; for (const t of ['input', 'change']) e.dispatchEvent(new Event(t)); }"
    problems = []
    controls = root.locator("[data-control]")
    for i in range(controls.count()):
        control = controls.nth(i)
        label = control.get_attribute("data-control")
        n = int(control.get_attribute("max")) + 1 if control.get_attribute("type") == "range" \
            else control.locator("option").count()
        for value in reversed(range(n)):
            before = root.evaluate(shown)
            control.evaluate(move, str(value))
            after = root.evaluate(shown)
            want = "-".join(root.locator("[data-control]").evaluate_all("els => els.map(e => e.value)"))
            if len(after) != 1 or after[0][0] != want:
                problems.append(f"{name}: {label} = {value} shows states {[k for k, _ in after]}, not [{want!r}]")
            elif before and before[0][0] != want and before[0][1] == after[0][1]:
                problems.append(f"{name}: moving {label} to {value} left the output as it was")
    if not controls.count():
        problems.append(f"{name}: its explorer has no controls")
    return problems


FIT = """() => {
  const column = document.querySelector("main article") || document.querySelector("main");
  const width = column.getBoundingClientRect().width;
  const out = [];
  for (const e of column.querySelectorAll("table, pre, img")) {
    if (e.offsetParent === null) continue;  // folded or hidden: not on the page until opened
    const box = e.getBoundingClientRect();
    const inner = e.tagName === "IMG" ? box.width : Math.max(box.width, e.scrollWidth);
    const shrunk = e.tagName === "IMG" && e.naturalWidth > 2.2 * box.width;  // labels drawn too small
    if (inner > width + 1 || shrunk) {
      out.push([e.tagName.toLowerCase(), Math.round(inner), Math.round(width), e.naturalWidth || 0,
                (e.innerText || e.getAttribute("alt") || "").slice(0, 50)]);
    }
  }
  return out;
}"""


def _fit_problems(page, name: str) -> list[str]:
    """Every table, printed output and figure on the page fits the content column: none wider
    than it (a table or ``pre`` that scrolls sideways hides its right-hand columns), and no
    picture drawn more than 2.2 times the width it is shown at (its labels would be too
    small to read)."""
    return [f"{name}: a {tag} of {w} px in a {col} px column" + (f" (drawn at {nat} px)" if nat else "")
            + f": {text!r}" for tag, w, col, nat, text in page.evaluate(FIT)]


def test_chapter_pages_in_a_browser(built, served):
    """What a reader sees, in headless Chromium (the system's, driven by Playwright): every
    figure of the book loaded, no error output, the Colab links, every formula typeset, the
    explorers answering their controls, no ipywidgets renderer or state on any page, and no
    JavaScript errors from the book's pages and assets. The network is off: every request
    off the local server is blocked, so the math and the explorers must work from the
    book's own files, and CDN-loaded scripts and images cannot interfere."""
    pw = _browser()
    problems, math_pages = [], 0
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=__import__("shutil").which(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        for nb_path in book.toc_notebooks(ROOT):
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(served)
                       else route.abort())
            errors = []
            page.on("console", lambda msg, errors=errors: errors.append((msg.text, msg.location.get("url", "")))
                    if msg.type == "error" else None)
            page.on("pageerror", lambda exc, errors=errors: errors.append((str(exc), served)))
            page.goto(served + nb_path.with_suffix(".html").as_posix(), wait_until="load")
            name = nb_path.stem
            figures = page.eval_on_selector_all(
                "main img", "els => els.map(e => [e.getAttribute('src'), e.complete && e.naturalWidth > 0])")
            ours = [f for f in figures if not re.match(r"[a-z]+://", f[0] or "")]  # not a CDN's badge
            pngs = [f for f in ours if (f[0] or "").endswith(".png") or (f[0] or "").startswith("data:image/png")]
            if len(pngs) < 3:
                problems.append(f"{name}: {len(pngs)} figures")
            problems += [f"{name}: figure {src} did not load" for src, ok in ours if not ok]
            bad = page.locator(".output.traceback, .output.error, .cell_output .traceback").count()
            if bad:
                problems.append(f"{name}: {bad} error outputs")
            stderr = " ".join(page.locator(".output.stderr").all_inner_texts())
            if "Traceback" in stderr or "Error" in stderr:
                problems.append(f"{name}: stderr shows {stderr[:200]!r}")
            badge = book.badge_url(nb_path, ROOT)
            links = page.eval_on_selector_all("a[href*='colab.research.google.com/github/']", "els => els.map(e => e.href)")
            if badge not in links:
                problems.append(f"{name}: no link to {badge} (found {links})")
            if not any(link.endswith(f"/notebooks/{nb_path.name}") and "/blob/" in link and link != badge for link in links):
                problems.append(f"{name}: no Colab launch button for notebooks/{nb_path.name} (found {links})")
            if page.locator("#pst-header").is_visible():  # book/_ext/static/page-fixes.css hides it
                problems.append(f"{name}: the theme's empty top bar is shown at 1300 px")
            math_pages += page.locator("main .math").count() > 0
            problems += _math_problems(page, name)
            problems += _fit_problems(page, name)
            if name in EXPLORER_CHAPTERS:
                problems += _explorer_problems(page, name)
            elif page.locator("main .cae-explorer").count():
                problems.append(f"{name}: an explorer on a page not in EXPLORER_CHAPTERS")
            scripts = page.eval_on_selector_all("script", "els => els.map(e => `${e.src} ${e.type}`)")
            widgets = [s for s in scripts if re.search(r"require|jupyter-widgets|html-manager|widget-(view|state)", s)]
            if widgets:  # the explorers need no ipywidgets renderer (_config.yml, book/_ext/page_fixes.py)
                problems.append(f"{name}: ipywidgets' scripts or state on the page: {widgets}")
            own = [(text, url) for text, url in errors if url.startswith(served)]
            problems += [f"{name}: console error from {url}: {text[:200]}" for text, url in own]
            page.close()
        browser.close()
    assert math_pages, "no chapter page shows a formula: the math check checked nothing"
    assert not problems, "\n".join(problems)


# -- every comparison rests on seeds (clipadapt.core.evidence) -----------------------------
EVIDENCE_CHAPTERS = ("02_adapting_clip", "03_video_retrieval", "04_vop", "05_tempme", "06_scpnet", "07_softcpt",
                     "08_choosing_a_method")


@pytest.mark.parametrize("stem", EVIDENCE_CHAPTERS)
def test_every_comparison_a_chapter_glues_rests_on_seeds(built, stem):
    """Each glued comparison (a name with ``_vs_``) of the executed chapter comes with its
    paired record over at least 3 seeds, and the prose quotes its spread or verdict with it
    (tests/test_evidence.py shows the check failing on a chapter that does not)."""
    from clipadapt.core import evidence

    path = built["exec"] / "notebooks" / f"{stem}.ipynb"
    glued = _chapter_runs().glued(path)
    cells = [c.source for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "markdown"]
    comparisons = [n for n in glued if "_vs_" in n and not n.startswith(evidence.RECORD)]
    assert comparisons or stem == "08_choosing_a_method", f"{stem} glues no comparison: the check checked nothing"
    assert evidence.unbacked(glued, cells) == []


def test_the_guide_names_no_winner_the_seeds_do_not_support(built):
    """Chapter 8's guide, computed from the chapters' runs: every winner it names is ahead of
    the runner-up on every seed (at least 3); elsewhere it says "no clear winner"."""
    import ast

    path = built["exec"] / "notebooks" / "08_choosing_a_method.ipynb"
    claims = json.loads(ast.literal_eval(_chapter_runs().glued(path)["guide_claims"]))
    assert claims, "the guide named nothing"
    for c in claims:
        assert c["named"].startswith("no clear winner") or (c["settled"] and c["n"] >= 3), c


# -- a chapter as a reader without the book's machinery runs it (Colab, a plain Jupyter) ----
def _outputs(nb):
    """(text of every output, {name: text/plain} of every quoted line) of an executed notebook."""
    texts, values = [], {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                texts.append(out.get("text", ""))
            elif "data" in out:
                texts.append(out["data"].get("text/plain", ""))
                values.update(out.get("metadata", {}).get(quoted.METADATA_KEY, {}))
    return "\n".join(texts), values


def test_a_chapter_run_without_myst_nb_shows_every_quoted_number(built, monkeypatch):
    """Chapter 7 executed as on Colab (no myst-nb: forced absent in its kernel): every name its
    prose quotes is shown under a cell with the value the book would paste, formatted as the
    prose formats it; no experiment record is. It runs in the book's executed folder, so its
    lab reads the runs the book's chapter 7 filed there (the same runs: what is checked here
    is what the cells show, not the training, which tests/test_experiments.py covers)."""
    import time

    nbclient = pytest.importorskip("nbclient")
    from clipadapt.kernels import WakefulKernelManager
    from clipadapt.training.loop import STATIC_ENV

    path = ROOT / "notebooks" / "07_softcpt.ipynb"
    nb = nbformat.read(path, as_version=4)
    monkeypatch.setenv(quoted.MYST_NB_ENV, "absent")  # seen by the kernel nbclient starts
    monkeypatch.setenv("CLIPADAPT_PROFILE", "tiny")
    monkeypatch.setenv(STATIC_ENV, "1")
    start = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=book.CELL_TIMEOUT_S["tiny"], kernel_name="python3",
                            resources={"metadata": {"path": str(built["exec"] / "notebooks")}},
                            kernel_manager_class=WakefulKernelManager).execute()
    print(f"{path.name} executed without myst-nb in {time.perf_counter() - start:.1f} s")
    text, values = _outputs(nb)
    for out in (o for c in nb.cells for o in c.get("outputs", []) if quoted.METADATA_KEY in o.get("metadata", {})):
        print(out["data"]["text/plain"])
    text = re.sub(r";?\n  ", "; ", text)  # the line's continuation rows, joined again
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    quotes = quoted.formats_of(markdown)
    assert quotes, "chapter 7 quotes no glued value"
    missing = sorted(set(quotes) - set(values))
    assert not missing, f"quoted by the prose, shown under no cell: {missing}"
    variables = pytest.importorskip("myst_nb.core.variables")
    for name, specs in quotes.items():
        shown = re.search(rf"(?:^|; |{quoted.HEADER}){re.escape(name)} = ([^;\n]+)", text)
        assert shown, f"{name} is in no quoted line: {text[-2000:]}"
        for spec in specs:
            pasted = variables.format_plain_text(values[name], spec)  # what the book shows
            assert pasted in shown.group(1).split(" / "), (name, spec, pasted, shown.group(0))
    assert "experiment:" not in text


# -- every number a chapter shows is one command away (clipadapt.experiments) ---------------
def _chapter_runs():
    """tools/chapter_runs.py: reading an executed chapter's runs, and checking one against reproduce."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("chapter_runs", ROOT / "tools" / "chapter_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _all_records(built) -> dict[str, tuple[Path, dict]]:
    return _records_in(str(built["exec"]))


@functools.lru_cache(maxsize=2)
def _records_in(exec_dir: str) -> dict[str, tuple[Path, dict]]:
    """Every glued run of the executed chapters in ``exec_dir`` (read once per build)."""
    runs = _chapter_runs()
    return {k: (nb_path, r) for nb_path in book.toc_notebooks(ROOT)
            for k, r in runs.records(Path(exec_dir) / nb_path).items()}


def _tiny_experiments() -> list[str]:
    from clipadapt import experiments

    return [n for n in experiments.names() if not experiments.get(n, profiles.get("tiny")).skip]


def test_every_experiment_is_run_by_its_chapter(built):
    """Each experiment that runs under tiny is glued, every seed and shot count of it, by the
    chapter its file is named after (ch03.toml: 03_...), and no chapter glues a run that no
    experiment declares."""
    from clipadapt import experiments

    records = _all_records(built)
    bench = experiments.Workbench(profiles.get("tiny"), None, None, None)
    expected = {experiments.record_name(n, p) for n in _tiny_experiments()
                for p in bench.points(experiments.get(n, profiles.get("tiny")))}
    assert expected, "no experiment runs under tiny"
    assert sorted(expected - set(records)) == [], "experiments no chapter ran"
    assert sorted(set(records) - expected) == [], "runs glued under no experiment's name"
    for key, (nb_path, rec) in records.items():
        assert nb_path.name[:2] == rec["name"].split("/")[0][2:], f"{key} was run by {nb_path.name}"


def _one_per_task() -> list[str]:
    """For each chapter and each task its experiments train on (the task as resolved under
    tiny: kind, world, batches, prior, names), the first experiment that trains (else the
    first). A chapter's run and the command's are made by the same functions (the spec as
    ``experiments.get`` resolves it, ``recipe_of``, ``Workbench.task``); what can part them
    is the workbench each builds and reads (the chapter's files) and the training path
    (``driver.run`` against ``reproduce``'s checkpoints and logging), so one run per task
    checks both; ``tests/test_driver.py`` checks every method and variant through the same
    two paths, and ``python tools/chapter_runs.py check --all-points`` every run by hand."""
    from clipadapt import experiments

    tiny, chosen = profiles.get("tiny"), {}
    for name in _tiny_experiments():
        spec = experiments.get(name, tiny)
        trains = experiments.recipe_of(spec, tiny).steps != 0
        group = (spec.chapter, json.dumps(dict(spec.task), sort_keys=True, default=str))
        if group not in chosen or (trains and not chosen[group][1]):
            chosen[group] = (name, trains)
    return [name for name, _ in chosen.values()]


def _check_forked(job: tuple) -> list[str]:
    """One check of :func:`reproduced`, in a forked process on one thread."""
    import torch

    torch.set_num_threads(1)
    name, point, record, workdir, out = job
    try:
        return _chapter_runs().check(name, point, record, "tiny", workdir, out)
    except Exception as err:  # noqa: BLE001 -- reported by the test of that run
        return [f"{name}: {type(err).__name__}: {err}"]


@pytest.fixture(scope="module")
def reproduced(built, tmp_path_factory) -> dict[str, list[str]]:
    """Each run of :func:`_one_per_task` through ``reproduce``, two side by side in forked
    processes of one thread each (the lab trains the chapters' runs the same way, and a run's
    numbers do not depend on it): name -> its differences from the chapter's record."""
    import multiprocessing

    runs, records, out = _chapter_runs(), _all_records(built), tmp_path_factory.mktemp("reproduced")
    jobs, found = [], {}
    for name in _one_per_task():
        mine = {k: r for k, (_, r) in records.items() if r["name"] == name}
        found[name] = [f"no chapter glued a run of {name}"] if not mine else []
        if mine:
            [(_, point, record)] = runs.chosen(mine)
            jobs.append((name, point, record, built["exec"] / "notebooks", out / name.replace("/", "-")))
    with multiprocessing.get_context("fork").Pool(2) as pool:
        found.update(zip((j[0] for j in jobs), pool.map(_check_forked, jobs, chunksize=1)))
    return found


@pytest.mark.parametrize("name", _one_per_task())
def test_reproduce_gives_the_number_the_chapter_shows(reproduced, name):
    """``python -m clipadapt.reproduce NAME --profile tiny`` ends with the metrics, trainable
    parameters and multiply-adds the executed chapter glued for that run, bit for bit: the
    first seed of the experiment at its largest shot count, on the chapter's own synthetic
    videos (same files, same manifest); one experiment per task of each chapter
    (:func:`_one_per_task` says why that is enough)."""
    assert reproduced[name] == []
