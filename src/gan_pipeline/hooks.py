"""Project hooks: validate every parameter before any work, tag the MLflow run, say where results are,
resume an interrupted training run into its MLflow run, and keep torchrun's other processes from writing."""

import logging
import math
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol, MemoryDataset
from kedro.pipeline import Pipeline
from mlflow.entities import RunInfo

from gan_pipeline.config import (
    EvaluationParams,
    IngestionParams,
    ParameterError,
    ProcessingParams,
    TrainingParams,
    parse_params,
)
from gan_pipeline.datasets import dataset_source
from gan_pipeline.gan.checkpoints import CheckpointStore, trajectory_settings
from gan_pipeline.gan.distributed import is_main_process, launched_world_size, process_device
from gan_pipeline.gan.networks import resolve_architecture
from gan_pipeline.io import InMemoryOutput
from gan_pipeline.tracking import resumable_run_id

logger = logging.getLogger(__name__)
TRAINING_NODE = "train_model"


def validate_parameters(params: dict[str, Any]) -> None:
    """Parse every pipeline's section and cross-check them; raise ``ParameterError`` on the first bad key."""
    ingestion = parse_params(IngestionParams, "data_ingestion", params.get("data_ingestion"))
    processing = parse_params(ProcessingParams, "data_processing", params.get("data_processing"))
    training = parse_params(TrainingParams, "training", params.get("training"))
    parse_params(EvaluationParams, "evaluation", params.get("evaluation"))
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


def git_state() -> dict[str, str]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"git_commit": commit.strip(), "git_dirty": str(bool(dirty.strip())).lower()}


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

    @hook_impl
    def after_catalog_created(self, catalog: CatalogProtocol) -> None:
        if not is_main_process():
            keep_outputs_in_memory(catalog)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        active = mlflow.active_run()
        self._run = active.info if active is not None else None
        if active is not None:
            mlflow.set_tags(git_state())

    @hook_impl
    def after_pipeline_run(self) -> None:
        if is_main_process():
            print(run_summary(self._project_path, self._run, mlflow.get_tracking_uri()))


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
