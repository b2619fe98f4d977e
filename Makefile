# The two commands of the README, and their parts.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install bytecode check lint typecheck layers unit bench

$(BIN)/conveyor: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/conveyor

## Compile Conveyor's modules as installing a wheel does: with PYTHONDONTWRITEBYTECODE
## set, every `conveyor` the tests or the demo start would compile them from source.
bytecode: install
	$(BIN)/python -m compileall -q src

## Run the bundled example's pipeline (lint, test with a JUnit report, build a wheel).
demo: bytecode
	cd examples/python-service && PATH="$(CURDIR)/$(BIN):$$PATH" conveyor run

## Everything CI checks: lint, format, types, layering, then the whole test suite.
test: bytecode lint typecheck layers
	$(BIN)/pytest -q -n 2

lint:
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck:
	$(BIN)/mypy

layers:
	$(BIN)/lint-imports

bench: install
	$(BIN)/python bench/dag_bench.py
