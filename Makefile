# The verbs people use. `make test` and `make demo` work alone on a fresh machine: each creates
# .venv and installs the project into it when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-slow check lint typecheck schema-check demo generate check-generated docs bench soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The everyday suite, two workers per core: end-to-end tests spend part of their time waiting on
# sockets and subprocesses, so one worker per core leaves the cores idle a fifth of the time.
# Checks that take minutes carry the `slow` marker and run in test-slow. Bytecode is cached even
# where PYTHONDONTWRITEBYTECODE is set: otherwise every test worker and every CLI subprocess
# compiles the package (and rewrites the tests) again.
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; n = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1; print(min(16, 2 * n))")
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# The slow checks (the README run as written, mypy over generated code, the plugin in a fresh
# venv) and every property test again with its full example count. CI runs both targets.
test-slow: $(STAMP)
	PYTHONDONTWRITEBYTECODE= RUNCOMFY_TESTS_THOROUGH=1 $(BIN)/python -m pytest -q -m 'slow or fuzz'

lint: $(STAMP)
	$(BIN)/ruff check src codegen generated tests examples bench docs
	$(BIN)/ruff format --check src codegen generated tests examples bench docs

typecheck: $(STAMP)
	$(BIN)/mypy

schema-check: $(STAMP)
	$(BIN)/runcomfy-client schema check schemas

check: lint typecheck schema-check check-generated docs

# The demo's emulator jobs take a second: its client polls at a matching pace.
demo: $(STAMP)
	RUNCOMFY_POLL_INTERVAL=0.25 $(BIN)/python examples/demo.py --out out

# Typed wrappers in generated/ are rendered from schemas/; CI fails when they are stale.
generate: $(STAMP)
	$(BIN)/runcomfy-client codegen --schemas schemas --out generated --package runcomfy_models --docs docs/models

check-generated: $(STAMP)
	$(BIN)/runcomfy-client codegen --schemas schemas --out generated --package runcomfy_models --docs docs/models --check

# The HTML documentation in site/ (mkdocs.yml): the guide split from README.md, one page per
# model (docs/models, from `make generate`), the API reference from docstrings. Warnings fail it.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet

# 2,000 jobs with every fault kind on: bench/soak-results.md. Exits 1 if a goal is missed.
# Its emulator's jobs take 0.05 s: clients poll it at a matching pace, not the real API's 3 s.
soak: $(STAMP)
	RUNCOMFY_POLL_INTERVAL=0.5 $(BIN)/python bench/soak.py

# Every figure against its baseline, in one table: bench/results.md (and bench/polling.png).
bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) out dist build site
