# VisualizeAI — `make run` serves the app, `make test` runs lint and every test tier.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
VENDOR := src/visualizeai/web/static/vendor/d3.min.js
DIST := src/visualizeai/web/static/dist/standalone.js
HOST ?= 127.0.0.1
PORT ?= 5000
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup run test test-scale lint format bench bench-gpu lock chromium clean

help: ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --no-deps -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(VENDOR): package.json package-lock.json scripts/vendor.mjs scripts/build.mjs
	npm ci --no-audit --no-fund --loglevel=error
	npm run build
	touch $@

# The esbuild bundles (static/dist) are rebuilt whenever a front-end module changes.
$(DIST): $(VENDOR) $(shell find src/visualizeai/web/static/js -name '*.js')
	npm run build
	touch $@

setup: $(STAMP) $(VENDOR) $(DIST) ## create .venv and install Python and npm dependencies from the lock files

run: setup ## serve the app on the embedded default at http://$(HOST):$(PORT)
	$(VENV)/bin/visualizeai serve --host $(HOST) --port $(PORT)

chromium: ## install Debian chromium for the browser tests if it is missing
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

lint: setup ## ruff check and format check
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

format: setup
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

test: setup chromium lint ## lint, then front-end unit tests, then unit, model, web and browser tests
	node --test tests/js/
	$(VENV)/bin/pytest -q

test-scale: setup ## long-context (32k tokens) and scale tests, minutes each; not part of test
	$(VENV)/bin/pytest -q -m scale
	VISUALIZEAI_FUZZ_EXAMPLES=200 $(VENV)/bin/pytest -q tests/web/test_fuzz_api.py

bench: setup chromium ## benchmark against the bare forward pass and BertViz (not part of test)
	$(PY) -m pip install -q --no-deps -r bench/requirements.lock
	cd bench && npm ci --no-audit --no-fund --loglevel=error
	$(PY) bench/run.py

lock: ## re-pin requirements.lock from requirements.in (needs the package index)
	rm -rf /tmp/visualizeai-lock && python3 -m venv /tmp/visualizeai-lock
	/tmp/visualizeai-lock/bin/pip install -q -r requirements.in
	/tmp/visualizeai-lock/bin/pip freeze --exclude-editable | grep -v '^visualizeai' > requirements.lock

clean:
	rm -rf $(VENV) node_modules bench/node_modules src/visualizeai/web/static/vendor

bench-gpu: ## GPU benchmark: Llama-3-8B shape at 32k tokens, BERT shapes, parity (needs CUDA torch; PY=python to use another)
	$(PY) bench/gpu.py
