# Two commands: `make run` (install + run the pipeline) and `make test` (install dev + run the suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
UV := $(BIN)/uv
UV_VERSION := 0.13.10
# Every package is pinned, with hashes, by the locks `make lock` writes from pyproject.toml and constraints.txt.
LOCKS := requirements/run.lock requirements/dev.lock
# Where the CPU build of torch the locks pin (2.13.0+cpu) comes from: pip's find-links on this machine, else
# PyTorch's CPU index. GPU nodes and the image take PyPI's CUDA build of the same release: `make install TORCH=cuda`.
TORCH ?= cpu
TORCH_SOURCE ?= $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS),--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
UV_PIP := $(UV) pip --quiet
UV_TARGET := --python $(BIN)/python $(TORCH_SOURCE)
CUDA_TORCH := $(if $(filter cuda,$(TORCH)),$(UV_PIP) install --python $(BIN)/python --reinstall-package torch torch==2.13.0 --index-url https://pypi.org/simple)

.PHONY: run test lint lock lock-check repro retrain install dev dag image airflow exps dvc-plots-template clean

run: install
	$(BIN)/kedro run

# The suite on every core (whole modules per worker: they share module-scoped runs).
test: dev lock-check
	$(BIN)/pytest -n auto --dist loadfile

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

$(UV): | $(BIN)/python
	$(PIP) install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# The locked packages, then the project itself (editable, no dependencies of its own to resolve).
$(VENV)/.installed: requirements/run.lock | $(UV)
	$(UV_PIP) install $(UV_TARGET) --require-hashes -r requirements/run.lock
	$(UV_PIP) install --python $(BIN)/python --no-deps -e .
	$(CUDA_TORCH)
	touch $@

$(VENV)/.dev-installed: requirements/dev.lock $(VENV)/.installed
	$(UV_PIP) install $(UV_TARGET) --require-hashes -r requirements/dev.lock
	$(CUDA_TORCH)
	touch $@

# Resolve pyproject.toml and constraints.txt into the locks, keeping their pins where they still fit
# (`make lock LOCK_ARGS=--upgrade`: the newest releases instead); the run lock takes the dev lock's versions,
# so `make run` and `make test` install the same builds. Run the suite before committing a changed lock.
lock: | $(UV)
	$(UV) pip compile --quiet pyproject.toml --extra dev -c constraints.txt --generate-hashes --python-version 3.11 $(LOCK_ARGS) \
		$(TORCH_SOURCE) --custom-compile-command "make lock" -o requirements/dev.lock
	$(UV) pip compile --quiet pyproject.toml -c requirements/dev.lock --generate-hashes --python-version 3.11 \
		$(TORCH_SOURCE) --custom-compile-command "make lock" -o requirements/run.lock
	$(BIN)/python requirements/lock_inputs.py --stamp $(LOCKS)

lock-check: | $(BIN)/python
	$(BIN)/python requirements/lock_inputs.py --check $(LOCKS)

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) mlflow.db mlruns
