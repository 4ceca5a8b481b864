# Two commands: `make run` (install + run the pipeline) and `make test` (install dev + run the suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: run test lint repro install dev clean

run: install
	$(BIN)/kedro run

test: dev
	$(BIN)/pytest

# The DVC pipeline: reruns only the stages whose code, data or parameters changed. Its stages
# call `kedro`, so the venv's bin goes first on PATH.
repro: dev
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

install: $(VENV)/.installed
dev: $(VENV)/.dev-installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(PIP) install --quiet -c constraints.txt -e ".[dev]"
	touch $@

clean:
	rm -rf $(VENV) mlflow.db mlruns
