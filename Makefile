# AutoVoice developer commands. `make demo` and `make test` work from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
UV_VERSION := 0.13.9
UV := .uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help install install-dev demo test test-fast lint format typecheck pytest audit bench bench-load serve clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# uv lists every package it installs (~200 lines); keep its summary lines and drop the list.
SYNC = set -o pipefail; $(UV) sync --frozen --compile-bytecode --python $(PYTHON)
QUIET_LIST = 2>&1 | { grep -vE '^ [-+~] ' || true; }

# What running needs (no dev tools). --inexact: a .venv that already has the dev tools keeps them.
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(SYNC) --no-dev --inexact $(QUIET_LIST)
	@touch $@

# The dev tools too (the `dev` dependency group: ruff, mypy, pytest, playwright, locust, ...).
$(VENV)/.installed-dev: pyproject.toml uv.lock | $(UV)
	$(SYNC) --group dev $(QUIET_LIST)
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed  ## Install AutoVoice and what it needs to run into .venv (locked versions)

install-dev: $(VENV)/.installed-dev  ## install + the development tools (test, lint, types, audit, load test)

demo: install  ## Build a voice profile from the bundled clips and print its report
	@bash scripts/demo.sh

lint: install-dev  ## ruff lint + format check
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

format: install-dev  ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix src tests bench scripts
	$(BIN)/ruff format src tests bench scripts

typecheck: install-dev  ## mypy (strict) on src/
	$(BIN)/mypy

pytest: install-dev  ## The test suite with coverage
	$(BIN)/pytest --cov --cov-report=term:skip-covered -q

# bandit skips B101 (assert): asserts are internal invariants only (STYLE.md); every other exception
# is justified in place with `# nosec BXXX # reason`.
audit: install-dev  ## Security checks: bandit on src/, pip-audit of uv.lock (says so when offline)
	$(BIN)/bandit -r src -q --skip B101
	$(BIN)/python scripts/audit_deps.py --uv $(UV)

test: lint typecheck audit pytest  ## Everything CI runs: lint, types, security checks, tests

test-fast: install-dev  ## The test suite without the tests marked slow (no coverage): the quick loop
	$(BIN)/pytest -q -m "not slow"

bench: install-dev  ## Speed and quality benchmarks, ~20 min on 2 cores (writes bench/results/)
	$(BIN)/python bench/core.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/conversion.py
	$(BIN)/python bench/separation.py
	$(BIN)/python bench/pitch_plan.py
	$(BIN)/python bench/tts.py
	$(BIN)/python bench/service.py

bench-load: install-dev  ## Locust load test, embedded + distributed (~9 min; PostgreSQL + Redis on loopback)
	$(BIN)/python bench/load.py

serve: install  ## Run the service on 127.0.0.1:8000 (make serve PORT=8080 HOST=0.0.0.0)
	$(BIN)/autovoice serve --host $(HOST) --port $(PORT)

clean:  ## Remove the environment and caches
	rm -rf $(VENV) .uv .pytest_cache .mypy_cache .ruff_cache .coverage demo-output
