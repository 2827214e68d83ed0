# Efficient CLIP Adaptation -- two commands do everything from a fresh clone:
#   make book   set up .venv, execute every chapter with papermill, build the HTML book
#   make test   set up .venv, run the unit tests, every notebook and the book build
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONSTRAINTS ?= requirements/ci-constraints.txt
# PROFILE=tiny|colab|paper overrides the profile (default: colab on a GPU, tiny otherwise)
PROFILE ?=
PROFILE_ARG := $(if $(PROFILE),--profile $(PROFILE),)

.PHONY: all book test bench format venv weights golden clean distclean colab-venv colab-check colab-check-fast

all: book

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[book,dev]"
	touch $@

venv: $(VENV)/.installed

book: venv
	$(PY) -m clipadapt.book build $(PROFILE_ARG)

# two workers (pytest-xdist), one thread each: on 2 cores the tiny CLIP's small operations gain
# more from two processes than from two threads (tests/conftest.py). --dist loadfile keeps each
# test file on one worker, so each book (tests/test_book.py, tests/test_colab_smoke.py) is
# executed once; loadgroup's xdist_group marks are ignored under pytest 9.2 (pytest-xdist #1386)
TEST_JOBS ?= 2
test: venv
	$(PY) -m pytest -n $(TEST_JOBS) --dist loadfile

bench: venv
	$(PY) -m clipadapt.bench

# every notebook's code within 80 columns (the book's code column; tests/test_repo.py
# checks it) and its outputs cleared; lines ruff cannot wrap (strings, comments) need a hand
format: venv
	$(VENV)/bin/ruff format --line-length 80 notebooks/
	$(VENV)/bin/jupyter nbconvert --clear-output --inplace --log-level=WARN notebooks/*.ipynb

# re-make the shipped tiny CLIP (deterministic; about four minutes on 2 CPU cores)
weights: venv
	$(PY) -m clipadapt.pretrain

# re-write the stored outputs of every method switched on (tests/golden/methods.safetensors);
# only after a change that is meant to move them -- review the test failures first
golden: venv
	$(PY) tests/golden/cases.py

# The Colab stack (book/testing.md): Python 3.13 with Colab's own versions as constraints
# (requirements/colab-gpu-freeze.txt; the few that cannot match, and why, are in
# requirements/colab-unmatched.txt: torch and its kin are PyPI's builds of Colab's release,
# the CUDA wheels are whatever that torch pins), no book extra; the chapters run as Colab
# runs them, cell by cell in a plain kernel (tools/colab_run.py), under colab-smoke.
# colab-check: every module imports, the unit tests, two chapters (the workflow
# .github/workflows/colab-check.yml); colab-check-fast: every module imports, the kernel
# client's tests, one chapter (.ci/run runs it beside the test suite: book/testing.md).
COLAB_VENV ?= .venv-colab
COLAB_PY := $(COLAB_VENV)/bin/python
COLAB_DATA ?= _build/colab-check/data
COLAB_CHAPTERS ?= notebooks/01_clip_from_scratch.ipynb notebooks/07_softcpt.ipynb
COLAB_FAST_CHAPTER ?= notebooks/01_clip_from_scratch.ipynb
# what make test runs besides the unit tests (chapters, the book, the runs' replays)
COLAB_SKIP := book book_execute colab_smoke driver reproduce
COLAB_RUN = OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} PYDEVD_DISABLE_FILE_VALIDATION=1 $(COLAB_PY) tools/colab_run.py \
	--profile colab-smoke --data $(COLAB_DATA) --out _build/colab-check/executed

$(COLAB_VENV)/.installed: pyproject.toml requirements/colab-gpu-freeze.txt requirements/colab-unmatched.txt
	py313="$$(tools/python313.sh)" && { test -x $(COLAB_PY) || "$$py313" -m venv $(COLAB_VENV); }
	$(COLAB_PY) tools/colab_constraints.py $(COLAB_VENV)/colab-constraints.txt
	$(COLAB_PY) -m pip install --quiet -c $(COLAB_VENV)/colab-constraints.txt -e ".[dev]" \
		ipykernel jupyter_client nbclient nbformat
	touch $@

colab-venv: $(COLAB_VENV)/.installed

colab-check-fast: colab-venv
	$(COLAB_PY) tools/import_all.py
	CLIPADAPT_COLAB_STACK=1 $(COLAB_PY) -m pytest -q -p no:cacheprovider tests/test_kernels.py \
		tests/test_colab_stack.py::test_this_is_colabs_stack
	$(COLAB_RUN) $(COLAB_FAST_CHAPTER)

colab-check: colab-venv
	$(COLAB_PY) tools/import_all.py
	CLIPADAPT_COLAB_STACK=1 OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(COLAB_PY) -m pytest -q -p no:cacheprovider \
		$(foreach t,$(COLAB_SKIP),--ignore=tests/test_$(t).py)
	$(COLAB_RUN) $(COLAB_CHAPTERS)

clean:
	rm -rf _build .pytest_cache

distclean: clean
	rm -rf $(VENV) $(COLAB_VENV)
