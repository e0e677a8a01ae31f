# The verbs people use. `make test` and `make demo` work alone on a fresh machine: each creates
# .venv and installs the project into it when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test check lint typecheck schema-check demo generate check-generated bench soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src codegen generated tests examples
	$(BIN)/ruff format --check src codegen generated tests examples

typecheck: $(STAMP)
	$(BIN)/mypy

schema-check: $(STAMP)
	$(BIN)/runcomfy-client schema check schemas

check: lint typecheck schema-check check-generated

demo: $(STAMP)
	$(BIN)/python examples/demo.py --out out

# Typed wrappers in generated/ are rendered from schemas/; CI fails when they are stale.
generate: $(STAMP)
	$(BIN)/runcomfy-client codegen --schemas schemas --out generated --package runcomfy_models

check-generated: $(STAMP)
	$(BIN)/runcomfy-client codegen --schemas schemas --out generated --package runcomfy_models --check

bench: $(STAMP)
	$(BIN)/python bench/bench_client.py
	$(BIN)/python bench/bench_batch.py

clean:
	rm -rf $(VENV) out dist build
