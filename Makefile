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

.PHONY: all book test bench format venv weights golden clean distclean

all: book

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[book,dev]"
	touch $@

venv: $(VENV)/.installed

book: venv
	$(PY) -m clipadapt.book build $(PROFILE_ARG)

test: venv
	$(PY) -m pytest

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

clean:
	rm -rf _build .pytest_cache

distclean: clean
	rm -rf $(VENV)
