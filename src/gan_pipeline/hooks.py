"""Project hooks: validate parameters before any work, keep one MLflow run per trained model (and resume
an interrupted training into its run), keep torchrun's other processes from writing, say where results are.

Under ``dvc repro`` each stage is its own ``kedro run --pipeline <name>``; these hooks make the
stages add up to the same MLflow run a single ``kedro run`` makes: the training run also records
the parameters, data version and reports of the stages upstream of it, and the evaluation stage
logs into the run that trained the model it evaluates.
"""

import importlib
import json
import logging
import math
import os
import pkgutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol, DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig
from mlflow import MlflowClient
from mlflow.entities import Run, RunInfo
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from safetensors import safe_open

from gan_pipeline import pipelines as pipelines_package
from gan_pipeline.config import (
    EvaluationParams,
    IngestionParams,
    ParameterError,
    ProcessingParams,
    PromotionParams,
    TrainingParams,
    flatten_params,
    parse_params,
)
from gan_pipeline.datasets import dataset_source
from gan_pipeline.gan.checkpoints import CheckpointStore, trajectory_settings
from gan_pipeline.gan.distributed import is_main_process, launched_world_size, process_device
from gan_pipeline.gan.networks import resolve_architecture
from gan_pipeline.io import InMemoryOutput
from gan_pipeline.tracking import changed_params, find_run, log_params, resumable_run_id, set_tags
from gan_pipeline.versioning import dvc_file_hash, refuse_parameters_hidden_from_dvc

logger = logging.getLogger(__name__)

RAW_DATASET = "raw_dataset"  # its DVC hash is the data version a trained model records
MODEL_DATASET = "generator"  # a pipeline that reads it without producing it evaluates an earlier model
RUN_RECORD_DATASET = "training_run"  # written by training: the MLflow run that trained the model
TRAINING_NODE = "train_model"


def validate_parameters(params: dict[str, Any]) -> None:
    """Parse every pipeline's section and cross-check them; raise ``ParameterError`` on the first bad key."""
    ingestion = parse_params(IngestionParams, "data_ingestion", params.get("data_ingestion"))
    processing = parse_params(ProcessingParams, "data_processing", params.get("data_processing"))
    training = parse_params(TrainingParams, "training", params.get("training"))
    parse_params(EvaluationParams, "evaluation", params.get("evaluation"))
    parse_params(PromotionParams, "promotion", params.get("promotion"))
    source = dataset_source(ingestion.dataset)
    options = source.options.model_validate(ingestion.source_options)
    shape = source.sample_shape(options)
    if shape is not None:
        _check_network_fits(training, ingestion.dataset, shape)
        if training.diff_augment and len(shape) != 3:
            raise ParameterError(
                f"invalid parameters:\n  training.diff_augment: {list(training.diff_augment)} augments images, but "
                f"{ingestion.dataset!r} samples are vectors of shape {shape}; set it to []"
            )
    total = source.num_samples(options)
    if total is not None:
        train_size = total - math.ceil(total * processing.validation_fraction)
        per_process = train_size // launched_world_size()
        if training.batch_size * training.discriminator_steps > per_process:
            steps = (
                f" x training.discriminator_steps {training.discriminator_steps}"
                if training.discriminator_steps > 1
                else ""
            )
            processes = f" per process ({launched_world_size()} processes)" if launched_world_size() > 1 else ""
            raise ParameterError(
                f"invalid parameters:\n  training.batch_size: {training.batch_size}{steps} is larger than the "
                f"training split of {ingestion.dataset!r} ({per_process} samples{processes}); lower it"
            )


def _check_network_fits(training: TrainingParams, dataset: str, shape: tuple[int, ...]) -> None:
    try:
        problems = resolve_architecture(training.preset, shape, training.architecture).problems()
    except ValueError as err:
        problems = [str(err)]
    if problems:
        raise ParameterError(
            f"invalid parameters:\n  training.preset: {training.preset!r} cannot train on {dataset!r} samples of "
            f"shape {shape}: " + "; ".join(problems)
        )


def git_state(prefix: str = "") -> dict[str, str]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {f"{prefix}git_commit": commit.strip(), f"{prefix}git_dirty": str(bool(dirty.strip())).lower()}


def run_summary(project_path: Path, run: RunInfo | None, tracking_uri: str) -> str:
    """Where a finished run left its results, for the last lines of ``kedro run``."""
    reporting = project_path / "data" / "08_reporting"
    lines = [
        "Results:",
        f"  metrics      {reporting / 'metrics.json'}",
        f"  figures      {reporting}/*.png",
        f"  models       {project_path / 'data' / '06_models'}",
        f"  MLflow store {tracking_uri}",
    ]
    if run is not None:
        lines.append(f"  MLflow run   {run.run_id} (experiment {run.experiment_id})")
    if tracking_uri.startswith("sqlite:"):
        lines.append(f"  open the UI: mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1")
    return "\n".join(lines)


def params_logged_by(pipeline: Pipeline, catalog: DataCatalog) -> dict[str, str]:
    """What kedro-mlflow will log as params for ``pipeline``: its nodes' ``params:`` inputs, flattened."""
    sections = {name for node in pipeline.nodes for name in node.inputs if name.startswith("params:")}
    logged: dict[str, Any] = {}
    for name in sorted(sections):
        logged.update(flatten_params({name.removeprefix("params:"): catalog.load(name)}))
    return {key: str(value) for key, value in logged.items()}


def project_pipelines() -> dict[str, Pipeline]:
    """Every pipeline under ``gan_pipeline.pipelines``, even when ``kedro run --pipeline`` loaded only one."""
    return {
        module.name: importlib.import_module(f"{pipelines_package.__name__}.{module.name}").create_pipeline()
        for module in pkgutil.iter_modules(pipelines_package.__path__)
    }


def upstream_pipelines(pipeline: Pipeline, candidates: dict[str, Pipeline]) -> list[str]:
    """The pipelines (DVC stages) that produce this pipeline's inputs, and theirs in turn."""
    found: list[str] = []
    wanted = set(pipeline.inputs())
    while wanted:
        dataset = wanted.pop()
        for name, candidate in candidates.items():
            if name not in found and dataset in candidate.all_outputs():
                found.append(name)
                wanted |= candidate.inputs()
    return found


def continue_run(mlflow_config: KedroMlflowConfig, run: Run) -> None:
    """Make kedro-mlflow log into ``run`` (keeping its name) instead of starting a new one."""
    mlflow_config.tracking.run.id = run.info.run_id
    mlflow_config.tracking.run.name = run.info.run_name


def run_for_earlier_model(pipeline: Pipeline, catalog: DataCatalog, experiment_name: str) -> Run | None:
    """The run an evaluation of an earlier-trained model logs into (created when needed), or None for a fresh run.

    That is the training run itself, unless MLflow cannot take this evaluation there: when the run is
    not in this tracking store and experiment, a new run tagged with its id; when a parameter differs
    from the value the run already holds (MLflow never changes a logged param), a child run of it.
    """
    if MODEL_DATASET not in pipeline.inputs() or not catalog.exists(RUN_RECORD_DATASET):
        return None
    trained_in = catalog.load(RUN_RECORD_DATASET).get("run_id")
    if not trained_in:
        return None
    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    training_run = find_run(trained_in)
    if training_run is None or training_run.info.experiment_id != experiment.experiment_id:
        logger.warning(
            "The model was trained in MLflow run %s, which experiment %r of the tracking store %s does not hold: "
            "logging into a new run tagged training_run_id=%s. Point MLFLOW_TRACKING_URI (and the experiment "
            "in mlflow.yml) at where the model was trained to keep one run per model.",
            trained_in,
            experiment_name,
            mlflow.get_tracking_uri(),
            trained_in,
        )
        return client.create_run(experiment.experiment_id, tags={"training_run_id": trained_in})
    changed = changed_params(training_run, params_logged_by(pipeline, catalog))
    if changed:
        listed = ", ".join(f"{key}: {old} -> {new}" for key, (old, new) in sorted(changed.items()))
        logger.warning(
            "Parameters changed since run %s logged them (%s); MLflow never changes a logged parameter, so "
            "this evaluation goes into a child run of it.",
            trained_in,
            listed,
        )
        return client.create_run(
            experiment.experiment_id,
            tags={MLFLOW_PARENT_RUN_ID: trained_in, "training_run_id": trained_in},
            run_name=f"{training_run.info.run_name}-reevaluation",
        )
    return training_run


class ModelRunHooks:
    """One MLflow run per trained model: evaluating an earlier-trained model logs into the run that trained it."""

    def __init__(self) -> None:
        self._mlflow_config: KedroMlflowConfig | None = None

    @hook_impl(trylast=True)  # after kedro-mlflow has put its configuration on the context
    def after_context_created(self, context: KedroContext) -> None:
        self._mlflow_config = getattr(context, "mlflow", None)

    @hook_impl(tryfirst=True)  # before kedro-mlflow starts a run
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog) -> None:
        config = self._mlflow_config
        names = run_params.get("pipeline_names") or [run_params.get("pipeline_name") or "__default__"]
        if config is None or mlflow.active_run() is not None:
            return  # no kedro-mlflow, or an orchestrator already opened the run
        if all(name in config.tracking.disable_tracking.pipelines for name in names):
            return
        run = run_for_earlier_model(pipeline, catalog, config.tracking.experiment.name)
        if run is not None:
            continue_run(config, run)


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    quieted = logging.getLogger(logger_name)
    level = quieted.level
    quieted.setLevel(logging.ERROR)
    try:
        yield
    finally:
        quieted.setLevel(level)


def keep_outputs_in_memory(catalog: CatalogProtocol) -> None:
    """Off the main torchrun process: every dataset keeps its saves in memory and writes nothing."""
    with _quiet("kedro.io.data_catalog"):  # one "Replacing dataset" notice per entry otherwise
        for name in list(catalog):
            dataset = catalog[name]
            if not isinstance(dataset, MemoryDataset | InMemoryOutput):
                catalog[name] = InMemoryOutput(dataset)


class ProjectHooks:
    def __init__(self) -> None:
        self._project_path = Path.cwd()
        self._run: RunInfo | None = None

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self._project_path = Path(context.project_path)
        validate_parameters(context.params)
        stage = os.environ.get("DVC_STAGE")  # set by DVC for every stage command
        if stage:
            refuse_parameters_hidden_from_dvc(context, stage)

    @hook_impl
    def after_catalog_created(self, catalog: CatalogProtocol) -> None:
        if not is_main_process():
            keep_outputs_in_memory(catalog)

    @hook_impl(trylast=True)  # after kedro-mlflow has started (or resumed) the run
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog) -> None:
        active = mlflow.active_run()
        self._run = active.info if active is not None else None
        if active is None:
            return
        trains = RUN_RECORD_DATASET in pipeline.all_outputs()
        # The code that evaluated a model is recorded beside, not over, the code that trained it.
        set_tags(git_state(prefix="" if trains else "evaluation_"))
        if trains:
            log_upstream_stages(pipeline, catalog)

    @hook_impl(trylast=True)
    def before_node_run(self, node: Node, catalog: DataCatalog) -> None:
        if RUN_RECORD_DATASET in node.outputs and mlflow.active_run() is not None:
            tag_data_version(catalog, self._project_path)

    @hook_impl
    def after_pipeline_run(self) -> None:
        if is_main_process():
            print(run_summary(self._project_path, self._run, mlflow.get_tracking_uri()))


def log_upstream_stages(pipeline: Pipeline, catalog: DataCatalog) -> None:
    """Give a training run what the stages upstream of it would have logged in a single ``kedro run``.

    Their parameters and their MLflow artifacts (dataset card, data profile), read from the files
    those stages left; nothing happens when they run in this same session.
    """
    candidates = project_pipelines()
    for node in (node for name in upstream_pipelines(pipeline, candidates) for node in candidates[name].nodes):
        for name in (name for name in node.inputs if name.startswith("params:")):
            log_params(flatten_params({name.removeprefix("params:"): catalog.load(name)}))
        for name in node.outputs:
            dataset = catalog.get(name)
            artifact_path = getattr(dataset, "artifact_path", None)
            if artifact_path is not None and dataset.filepath.is_file():
                mlflow.log_artifact(str(dataset.filepath), artifact_path)


def tag_data_version(catalog: DataCatalog, project_path: Path) -> None:
    """Tag the run with the raw data the model is trained from: its DVC hash (``dvc pull`` restores it)
    and its dataset card (source, file checksums) as ``data.*`` tags."""
    raw_dataset = catalog.get(RAW_DATASET)
    if raw_dataset is None:
        return
    raw_file = raw_dataset.filepath
    if not raw_file.is_file():
        logger.warning("%s is missing: the run cannot record which data version trained the model", raw_file)
        return
    shown = raw_file.relative_to(project_path) if raw_file.is_relative_to(project_path) else raw_file
    set_tags({"data_version": dvc_file_hash(raw_file), "data_version_file": shown.as_posix()})
    with safe_open(raw_file, framework="np") as handle:
        card = json.loads((handle.metadata() or {}).get("card", "{}"))
    set_tags({f"data.{key}": value for key, value in card.items()})


class ResumeRunHooks:
    """Points kedro-mlflow at the MLflow run of an interrupted training, so resuming continues that run.

    Runs before kedro-mlflow starts its run (``tryfirst``) and only sets ``tracking.run.id`` of
    its configuration; the training node itself decides what to restore.
    """

    def __init__(self) -> None:
        self._context: KedroContext | None = None

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self._context = context

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, pipeline: Pipeline) -> None:
        context = self._context
        mlflow_config = getattr(context, "mlflow", None)
        if mlflow_config is None or TRAINING_NODE not in {node.name for node in pipeline.nodes}:
            return
        training = parse_params(TrainingParams, "training", context.params.get("training"))
        if training.resume == "never" or training.checkpoint.every_epochs == 0:
            return
        store = CheckpointStore(Path(context.project_path) / training.checkpoint.directory)
        trajectory = trajectory_settings(training, launched_world_size(), process_device(training.device).type)
        run_id = resumable_run_id(store.latest(), trajectory, context.params)
        if run_id is not None:
            logger.info("Resuming the interrupted training run: MLflow run %s continues", run_id)
            mlflow_config.tracking.run.id = run_id
