# One command to set up and run each main job. VENV can point elsewhere (.ci/run uses a fresh one).
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

.PHONY: serve demo test lint bench
serve: $(VENV)/.installed
	$(VENV)/bin/switchboard serve --demo

demo: $(VENV)/.installed
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
