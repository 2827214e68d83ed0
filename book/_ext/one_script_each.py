"""A Sphinx extension of this book: each page loads each script once.

sphinx-thebe 0.3 (which jupyter-book 1 always loads) registers its inline configuration
script through ``app.add_js_file(None, body=...)`` after the HTML builder has started, so
Sphinx 7 keeps two copies of it: the builder's own and the registry's, replayed with the
file name ``""`` instead of ``None``, so they do not compare equal. The second copy then
fails in the browser ("Identifier 'THEBE_JS_URL' has already been declared"). This drops a
script whose file name and attributes (its body among them) a page already has.
"""

from __future__ import annotations


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


def setup(app):
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
