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

# The browser tests (tests/browser) drive Debian's Chromium through Playwright's Python package
# (never `playwright install`: no browser build is downloaded) and check each customer page with
# axe-core from its npm package, installed into the venv ($(VENV)/node). As root, Chromium comes
# from apt; elsewhere (no root, no apt, no npm) the marker stays missing, a note says why, and
# the browser tests skip with the reason (CI sets SWITCHBOARD_REQUIRE_BROWSER=1: they fail).
CHROMIUM := /usr/bin/chromium
AXE_VERSION := 4.14.1
AXE_JS := $(VENV)/node/node_modules/axe-core/axe.min.js

$(VENV)/.browser: $(VENV)/.installed
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else echo "note: no $(CHROMIUM) and no root apt-get to install it: the browser tests will skip"; fi
	@if command -v npm >/dev/null; then \
		npm install --prefix $(VENV)/node --no-audit --no-fund --silent axe-core@$(AXE_VERSION); \
	else echo "note: no npm to install axe-core: the browser tests will skip"; fi
	@if [ -x $(CHROMIUM) ] && [ -f $(AXE_JS) ]; then touch $@; fi

.PHONY: serve demo planner test lint bench browser
serve: $(VENV)/.runtime
	$(VENV)/bin/switchboard serve --demo

demo: $(VENV)/.runtime
	$(VENV)/bin/switchboard demo

# What-if planning: an example scenario against its baseline, its report opened in a browser.
planner: $(VENV)/.runtime
	$(VENV)/bin/switchboard scenario run scenarios/examples/late-shift.yaml --open

browser: $(VENV)/.browser

test: $(VENV)/.installed $(VENV)/.browser lint
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(PY) -m benchmarks.solver
