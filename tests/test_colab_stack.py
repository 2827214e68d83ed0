"""The Colab-stack check (``make colab-check``, book/testing.md) is wired as it says: Colab's
versions become the constraints less the listed exceptions, a missing Python 3.13 fails with
the command that installs it, .ci/run runs the fast part and the workflow all of it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import colab_constraints  # noqa: E402  (tools/ is no package)


def test_the_constraints_are_colabs_versions_less_the_listed_exceptions():
    lines, notes = colab_constraints.build()
    pins = dict(line.split("==") for line in lines)
    # what Colab has, as it has it: the kernel stack the chapters run in
    assert pins["jupyter-client"] == "7.4.9" and pins["ipykernel"] == "6.17.1" and pins["numpy"] == "2.1.3"
    # its local torch builds become PyPI's build of the same release; CUDA wheels are torch's choice
    assert pins["torch"] == "2.11.0" and pins["torchvision"] == "0.26.0"
    assert not any(name.startswith(("nvidia-", "cuda-")) for name in pins)
    assert "torch: Colab 2.11.0+cu128, here 2.11.0" in notes
    # every exception has its reason
    assert all(len(why) > 20 for _, _, why in colab_constraints.read_unmatched())


def test_a_malformed_exception_line_names_itself(tmp_path):
    bad = tmp_path / "unmatched.txt"
    bad.write_text("# comment\ntorch | 2.11.0\n")
    with pytest.raises(ValueError, match=r"unmatched.txt:2: expected 'pattern \| version or any \| why'"):
        colab_constraints.read_unmatched(bad)


def test_a_missing_python_313_says_how_to_install_it(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no pyenv, no uv-installed Python
    run = subprocess.run(["bash", "tools/python313.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    if run.returncode == 0:
        pytest.skip(f"this system's /usr/bin has Python 3.13 ({run.stdout.strip()})")
    assert run.returncode == 1 and "uv python install 3.13" in run.stderr, run.stderr


def test_ci_runs_the_fast_part_and_the_workflow_all_of_it():
    make = (ROOT / "Makefile").read_text()
    fast = make.split("colab-check-fast: colab-venv\n", 1)[1].split("\n\n", 1)[0]
    assert "tools/import_all.py" in fast and "tests/test_kernels.py" in fast and "$(COLAB_FAST_CHAPTER)" in fast
    assert "make colab-check-fast" in (ROOT / ".ci" / "run").read_text()
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "colab-check.yml").read_text())
    steps = flow["jobs"]["colab-stack"]["steps"]
    assert any(s.get("with", {}).get("python-version") == "3.13" for s in steps)
    assert any(s.get("run", "").strip() == "make colab-check" for s in steps)
    assert ".venv-colab*/" in (ROOT / ".gitignore").read_text().splitlines()
    doc = (ROOT / "book" / "testing.md").read_text()
    assert "make colab-check" in doc and "colab-check.yml" in doc


@pytest.mark.skipif(not os.environ.get("CLIPADAPT_COLAB_STACK"), reason="set by make colab-check")
def test_this_is_colabs_stack():
    """Run inside ``make colab-check``: the versions the chapters meet are Colab's."""
    import jupyter_client
    import torch

    assert sys.version_info[:2] == (3, 13) and jupyter_client.__version__ == "7.4.9"
    assert torch.__version__.split("+")[0] == "2.11.0"
