# Two commands do everything on a fresh machine: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
PY := .venv/bin/python
DEMO_DIR ?= data/demo
DEMO_WORK ?= work_dirs/demo

.PHONY: setup demo test test-fast bench clean-venv

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean-venv:
	rm -rf .venv
