# Two commands: `make run` (install + run the pipeline) and `make test` (install dev + run the suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: run test lint repro retrain install dev dag image airflow exps dvc-plots-template clean

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

# DVC experiments in a terminal's width: the key metrics and the parameters that differ (a plain
# `dvc exp show` has over a hundred columns). EXPS_ARGS: more `dvc exp show` options, e.g. "-A" or "--csv".
KEY_COLUMNS = Experiment|frechet_distance|classes_covered|precision|recall
exps: dev
	$(BIN)/dvc exp show --no-pager -n 5 --only-changed --drop '(?!($(KEY_COLUMNS))$$)(?![^/]*\.[^/]*$$).*' $(EXPS_ARGS)

# .dvc/plots/offline.html: DVC's plots page with Vega inlined, so `dvc plots show/diff` render offline.
dvc-plots-template: dev
	$(BIN)/python .dvc/plots/build_template.py

# The Airflow DAG (pipelines/airflow/gan_pipeline_dag.py), rendered by kedro-airflow from the Kedro
# pipelines, pipelines/airflow/dag_template.j2 and conf/base/airflow.yml: one task per stage.
dag: dev
	$(BIN)/kedro airflow create --pipelines __default__ --group-by namespace \
		--jinja-file pipelines/airflow/dag_template.j2 --target-dir pipelines/airflow
	$(BIN)/ruff format --quiet pipelines/airflow/gan_pipeline_dag.py

# The image the cluster runs (Dockerfile); push it and name it in conf/base/airflow.yml.
IMAGE ?= gan-pipeline:latest
image:
	docker build --build-arg GIT_COMMIT=$$(git rev-parse HEAD) -t $(IMAGE) .

# Airflow 3 in a virtual environment of its own (it would change the project's resolved dependencies);
# the tests run the DAG with it.
AIRFLOW_VENV ?= .venv-airflow
airflow: $(AIRFLOW_VENV)/.installed

$(AIRFLOW_VENV)/.installed: pipelines/airflow/requirements.txt
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet -r pipelines/airflow/requirements.txt
	touch $@

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
	rm -rf $(VENV) $(AIRFLOW_VENV) mlflow.db mlruns
