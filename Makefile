# The two commands of the README: `make demo` and `make test`. Both set up what they need on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.modalens-installed

.PHONY: setup demo test lint format clean web

setup: $(STAMP)

# torch first, pinned to the CPU wheel on disk; the package itself accepts torch>=2.3.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[test]"
# MMSA's models (tests/models/test_mmsa*.py) without its declared requirements: they name nvidia-ml-py3, a 2017
# sdist only used to pick a GPU (modalens.models.mmsa stands in for it); the rest are in the test extra.
	$(PIP) install -q --no-deps mmsa==2.2.1
	touch $(STAMP)

demo: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/modalens demo

LINTED := $(wildcard src tests scripts benchmarks)

lint: setup
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/lint-imports  # the layering contract in pyproject.toml, lazy imports counted

format: setup
	$(VENV)/bin/ruff check --fix $(LINTED)
	$(VENV)/bin/ruff format $(LINTED)

# Browser tests drive Debian's Chromium (Playwright's own browser download does not work offline).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# The front end: install, unit tests (vitest), type check and build into src/modalens/app/static.
web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund

web: web/node_modules/.package-lock.json
	cd web && npm test && npm run build

# The feature demo's tests check its images against the Fashion-MNIST files Debian ships.
FASHION := /usr/share/datasets/fashion-mnist
$(FASHION):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist

test: setup lint $(CHROMIUM) $(FASHION) web
	HF_HUB_OFFLINE=1 $(PY) -m pytest -n 2 -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist src/*.egg-info
