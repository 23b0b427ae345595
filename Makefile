# One command to set up and run each main job. VENV can point elsewhere (.ci/run uses a fresh one).
# Two installs, each with its marker file: the runtime alone (serve, demo) and the runtime with
# the dev extras (tests, linters, benchmarks). pyproject.toml changing redoes both.
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.runtime: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed: $(VENV)/.runtime
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

.PHONY: serve demo test lint bench
serve: $(VENV)/.runtime
	$(VENV)/bin/switchboard serve --demo

demo: $(VENV)/.runtime
	$(VENV)/bin/switchboard demo

test: $(VENV)/.installed lint
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(PY) -m benchmarks.solver
