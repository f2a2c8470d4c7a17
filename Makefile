# Two commands do everything on a fresh machine: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
PY := .venv/bin/python
DEMO_DIR ?= data/demo
DEMO_WORK ?= work_dirs/demo

.PHONY: setup demo test test-fast lint bench clean-venv

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

# the style check runs first, so CI fails on a violation before the slower tests
lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

test: lint
	$(PY) -m pytest -q

test-fast: lint
	$(PY) -m pytest -q -m "not slow"

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean-venv:
	rm -rf .venv
