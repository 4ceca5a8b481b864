# Two commands: `make run` (install + run the pipeline) and `make test` (install dev + run the suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: run test lint repro retrain install dev clean

run: install
	$(BIN)/kedro run

test: dev
	$(BIN)/pytest

# The DVC pipeline: reruns only the stages whose code, data or parameters changed. Its stages
# call `kedro`, so the venv's bin goes first on PATH.
repro: dev
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

# One scheduled retraining (what .github/workflows/retrain.yml runs): dvc pull -> dvc repro (or
# `dvc exp run -S` with RETRAIN_ARGS="--set training.epochs=5 ...") -> promotion gate -> dvc push ->
# data/08_reporting/retrain_report.md. Exits 0 whether or not the challenger won.
retrain: dev
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/gan-pipeline retrain $(RETRAIN_ARGS)

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
