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
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples

typecheck: $(STAMP)
	$(BIN)/mypy

schema-check: $(STAMP)
	$(BIN)/runcomfy-client schema check schemas

check: lint typecheck schema-check

demo: $(STAMP)
	$(BIN)/python examples/demo.py --out out

generate: $(STAMP)
	@echo "make generate: typed wrappers (codegen) are not implemented yet; see the README" >&2
	@exit 1

bench: $(STAMP)
	$(BIN)/python bench/bench_client.py

clean:
	rm -rf $(VENV) out dist build
