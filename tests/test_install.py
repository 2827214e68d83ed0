"""Installing clipadapt on Colab leaves Colab's preinstalled packages as they are.

A resolver run (uv) of ``pyproject.toml`` for Colab's Python and platform, constrained to
the committed copy of Colab's GPU ``pip freeze`` (requirements/colab-gpu-freeze.txt, its
source and date in its header), must succeed, and every package it picks that Colab
already has must be Colab's version. Colab's ``+cu128`` builds of torch and its kin are not
on PyPI: their lines are left out of the constraints (with the CUDA and nvidia wheels they
bring), and the versions picked for them must still equal Colab's public version
(``2.11.0`` for ``2.11.0+cu128``). The ``book`` extra, which says that it cannot go on Colab
(jupyter-book 1 needs sphinx < 8; Colab has 8.2.3), must fail that resolve for that reason,
and its comment in ``pyproject.toml`` must say so and what a Colab reader does instead. Needs
PyPI (CI has it); without it the three resolver tests are skipped by the ``pypi`` fixture,
and pytest's summary (``-ra``) prints why.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FREEZE = ROOT / "requirements" / "colab-gpu-freeze.txt"
PYTHON = "3.13"  # os-info-gpu.txt: Python 3.13.15
PLATFORM = "x86_64-manylinux_2_28"
LOCAL_BUILDS = re.compile(r"^(nvidia-|cuda-)")  # CUDA wheels that come with Colab's torch builds
BOOK_ONLY = {"jupyter-book", "papermill", "myst-nb", "jupyter-cache"}  # sphinx: Colab has its own


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_freeze(path: Path = FREEZE) -> dict[str, str]:
    """``{normalised name: version}`` of the ``name==version`` lines of a pip freeze."""
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$", line.strip())
        if m:
            out[_norm(m.group(1))] = m.group(2)
    return out


def constraints(freeze: dict[str, str]) -> list[str]:
    """The freeze as resolver constraints, less the local ``+cu`` builds and CUDA wheels."""
    return [f"{name}=={v}" for name, v in freeze.items() if "+" not in v and not LOCAL_BUILDS.match(name)]


def _uv() -> list[str] | None:
    exe = Path(sys.executable).with_name("uv")
    if exe.exists():
        return [str(exe)]
    try:
        import uv  # noqa: F401

        return [sys.executable, "-m", "uv"]
    except ImportError:
        return None


def resolve(pyproject: Path, cons: list[str], tmp: Path,
            extras: tuple[str, ...] = ()) -> tuple[int, str, dict[str, str]]:
    uv = _uv()
    if uv is None:
        pytest.fail("uv is missing: it is in the dev extra (pip install -e '.[dev]')")
    cfile = tmp / "colab-constraints.txt"
    cfile.write_text("\n".join(cons) + "\n")
    out = tmp / "resolved.txt"
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", NO_COLOR="1")
    cmd = [*uv, "pip", "compile", str(pyproject), "--python-version", PYTHON, "--python-platform", PLATFORM,
           "-c", str(cfile), "-o", str(out), "--no-header", "--quiet", *(f"--extra={e}" for e in extras)]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    picked = read_freeze(out) if run.returncode == 0 else {}
    return run.returncode, run.stderr, picked


def _offline(stderr: str) -> bool:
    return "pypi.org" in stderr and re.search(r"dns error|Connect|timed out|Failed to fetch", stderr) is not None


PYPI = "https://pypi.org/simple/"


def pypi_unreachable(url: str = PYPI, timeout: float = 10) -> str | None:
    """Why ``url`` (PyPI's index) cannot be reached from here, or ``None`` when it can (an
    HTTP error status counts as reached). Honours the proxy variables, as uv does."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None
    except (OSError, ValueError) as err:
        return f"{type(err).__name__}: {getattr(err, 'reason', err)}"


@pytest.fixture(scope="module")
def pypi():
    """Skips the resolver tests, with the reason in pytest's summary (``-ra`` in addopts),
    when PyPI cannot be reached: they need its index; CI runs them."""
    why = pypi_unreachable()
    if why:
        pytest.skip(f"PyPI ({PYPI}) cannot be reached from here ({why}): the Colab install check (a uv resolve "
                    f"against Colab's freeze) needs it and runs in CI")


def test_the_pypi_probe_says_why():
    why = pypi_unreachable("http://127.0.0.1:9/simple/", timeout=5)  # the discard port: nothing listens
    assert why and ("refused" in why.lower() or "URLError" in why)


def test_freeze_is_the_committed_colab_copy():
    head = FREEZE.read_text().splitlines()[:4]
    assert any("github.com/googlecolab/backend-info" in line for line in head), "the freeze names its source"
    assert any(re.search(r"20\d\d-\d\d-\d\d", line) for line in head), "the freeze names its date"
    freeze = read_freeze()
    assert freeze["ipywidgets"].startswith("7.") and freeze["torch"].endswith("+cu128")


def test_installing_clipadapt_on_colab_changes_none_of_its_packages(tmp_path, pypi):
    freeze = read_freeze()
    code, err, picked = resolve(ROOT / "pyproject.toml", constraints(freeze), tmp_path)
    if code != 0 and _offline(err):
        pytest.skip(f"PyPI unreachable, the resolver cannot run here: {err.strip().splitlines()[-1]}")
    assert code == 0, f"clipadapt cannot be installed beside Colab's packages:\n{err[-3000:]}"
    changed = {}
    for name, version in picked.items():
        if name in freeze and not LOCAL_BUILDS.match(name):
            colab = freeze[name].split("+")[0]
            if version != colab:
                changed[name] = (freeze[name], version)
    assert not changed, f"installing clipadapt would change Colab's packages (Colab, picked): {changed}"
    # the chapters' own stack is Colab's; what builds the book is not pulled in
    for name in ("numpy", "ipykernel", "ipywidgets", "matplotlib", "torch", "torchvision"):
        assert name not in picked or picked[name] == freeze[name].split("+")[0], name
    assert "open-clip-torch" in picked and not BOOK_ONLY & set(picked), sorted(BOOK_ONLY & set(picked))


def test_the_resolver_test_can_fail(tmp_path, pypi):
    """The same run on a pyproject that asks for ipywidgets 8 finds no solution."""
    text = (ROOT / "pyproject.toml").read_text()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pyproject.toml").write_text(re.sub(r'"ipywidgets[^"]*"', '"ipywidgets>=8"', text))
    code, err, _ = resolve(bad / "pyproject.toml", constraints(read_freeze()), tmp_path)
    if code != 0 and _offline(err):
        pytest.skip(f"PyPI unreachable, the resolver cannot run here: {err.strip().splitlines()[-1]}")
    assert code != 0 and "ipywidgets" in err


def book_extra_comment(text: str) -> str:
    """The comment lines right above ``book = [`` in ``pyproject.toml``."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("book = ["))
    above = []
    for line in reversed(lines[:at]):
        if not line.startswith("#"):
            break
        above.insert(0, line.lstrip("# "))
    return " ".join(above)


def test_the_book_extra_says_it_cannot_go_on_colab_and_what_to_do_there():
    freeze = read_freeze()
    said = book_extra_comment((ROOT / "pyproject.toml").read_text())
    assert "Colab" in said and f"sphinx {freeze['sphinx']}" in said, said
    assert "sphinx < 8" in said and "make book" in said and "install cell" in said, said


def test_the_book_extra_cannot_be_installed_on_colab(tmp_path, pypi):
    """What the comment says: resolving ``clipadapt[book]`` against the freeze fails, on
    jupyter-book 1 and Colab's sphinx."""
    freeze = read_freeze()
    code, err, _ = resolve(ROOT / "pyproject.toml", constraints(freeze), tmp_path, extras=("book",))
    if code != 0 and _offline(err):
        pytest.skip(f"PyPI unreachable, the resolver cannot run here: {err.strip().splitlines()[-1]}")
    assert code != 0, "clipadapt[book] now resolves beside Colab's packages: update the book extra's comment"
    assert "jupyter-book" in err and f"sphinx=={freeze['sphinx']}" in err, err[-3000:]
