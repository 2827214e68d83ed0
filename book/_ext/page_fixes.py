"""A Sphinx extension of this book: three fixes to the pages that jupyter-book 1's toolchain makes.

1. Each page loads each script once. sphinx-thebe 0.3 (which jupyter-book 1 always loads)
   registers its inline configuration through ``app.add_js_file(None, body=...)`` after the
   HTML builder has started, so Sphinx 7 keeps two copies of it: the builder's own and the
   registry's, replayed with the file name ``""`` instead of ``None``, so they do not compare
   equal. The second copy then fails in the browser ("Identifier 'THEBE_JS_URL' has already
   been declared"). Scripts whose file name and attributes (the body among them) a page
   already has are dropped.
2. No ipywidgets state on the pages: papermill saves the state of the widgets that the
   chapters' explorers make for a live kernel, and myst-nb writes it into the page as a
   ``application/vnd.jupyter.widget-state+json`` script; the pages show the explorers'
   own HTML (``clipadapt.explorer``; ``_config.yml`` leaves out widget views and
   ipywidgets' renderer), so the state is dead weight.
3. ``static/page-fixes.css``: no empty top bar above the pages on wide screens.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).with_name("static")


def _key(script) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    return (getattr(script, "filename", None) or "", tuple(sorted((k, str(v)) for k, v in attributes.items())))


def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def drop_widget_state(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if scripts:
        context["script_files"] = [s for s in scripts
                                   if (getattr(s, "attributes", {}) or {}).get("type") != WIDGET_STATE]


def _add_static(app) -> None:
    app.config.html_static_path.append(str(STATIC))


def setup(app):
    app.connect("builder-inited", _add_static)
    app.add_css_file("page-fixes.css")
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    app.connect("html-page-context", drop_widget_state, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
