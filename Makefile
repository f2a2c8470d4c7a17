# Two commands do everything on a fresh machine: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
PY := .venv/bin/python
DEMO_DIR ?= data/demo
DEMO_WORK ?= work_dirs/demo

.PHONY: setup demo test test-fast lint bench clean-venv mutate

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

# the style check runs first, so CI fails on a violation before the slower tests
lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

# under the CPU pin (scripts/pinned.sh): the tests that compare numbers with fixed values get the same kernels on
# every machine (docs/reproducibility.md)
test: lint
	bash scripts/pinned.sh $(PY) -m pytest -q

test-fast: lint
	bash scripts/pinned.sh $(PY) -m pytest -q -m "not slow"

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Mutation score of the files issue 25 lists (docs/mutation.md), with mutmut, one worker: slow, so not part of
# `make test`. Capped at MUTATE_CAP_S seconds (default 7200: 2 h on 2 cores; the next run resumes where a capped
# one stopped); MUTATE_FILES="a.py b.py" runs a subset. Under the CPU pin, as `make test`. Writes
# benchmarks/results/mutation.json and prints a table.
mutate: setup
	@$(PY) -c "import mutmut" 2>/dev/null || $(PY) -m pip install -q "mutmut==3.8.1"
	@$$([ -x scripts/pinned.sh ] && echo scripts/pinned.sh) $(PY) scripts/mutate.py

clean-venv:
	rm -rf .venv
