"""Project hooks: they only wire. What they call lives in ``config``, ``tracking``, ``io`` and the registry.

Under ``dvc repro`` each stage is its own ``kedro run --pipelines <name>``; these hooks make the
stages add up to the MLflow run a single ``kedro run`` makes: the training run also records the
parameters, data version and reports of the stages upstream of it, and the evaluation stage logs
into the run that trained the model it evaluates.
"""

import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

import mlflow
from kedro.config import MissingConfigException
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol, DataCatalog
from kedro.pipeline import Node, Pipeline
from kedro_mlflow.framework.hooks import MlflowHook
from mlflow import MlflowClient
from pydantic import BaseModel

from gan_pipeline.config.base import parameter_errors
from gan_pipeline.config.run import RunParameters, validate_parameters
from gan_pipeline.gan.checkpoints import CheckpointError, CheckpointRecord
from gan_pipeline.gan.distributed import is_main_process, launched_world_size, process_device
from gan_pipeline.io import keep_outputs_in_memory, read_metadata
from gan_pipeline.pipeline_registry import DEFAULT, stage_pipelines, upstream_pipelines
from gan_pipeline.pipelines.promotion.nodes import refused_decision
from gan_pipeline.pretrained import inception_network, inception_weights
from gan_pipeline.project_lock import RunLock
from gan_pipeline.promotion import PromotionRefused
from gan_pipeline.splits import DatasetRecord
from gan_pipeline.tracking import (
    DESCRIPTION_TAG,
    PROCESS_TAG,
    bound_tracking_requests,
    check_tracking_server,
    completed,
    create_local_store,
    dvc_experiment_tags,
    end_as_killed_at_exit,
    end_runs_of_dead_processes,
    find_run,
    git_state,
    log_stage_record,
    logged_form,
    run_description,
    run_name,
    run_summary,
    select_run,
    set_tags,
    tag_data_version,
    this_process,
)
from gan_pipeline.versioning import dvc_file_hash, refuse_parameters_hidden_from_dvc

logger = logging.getLogger(__name__)

RAW_DATASET = "raw_dataset"  # its DVC hash is the data version a trained model records
DECISION_DATASET = "promotion_decision"  # the gate's decision, also when it refused
REGISTERED_DATASET = "registered_model"  # the version the evaluation registered
MODEL_DATASET = "generator"  # a pipeline that reads it without producing it evaluates an earlier model
RUN_RECORD_DATASET = "training_run"  # written by training: the MLflow run that trained the model
TRAINING_NODE = "training.train_model"
EVALUATION_NODE = "evaluation.evaluate_generator"
PARAMS_PREFIX = "params:"
COMMAND_TAG = "kedro_command"  # kedro-mlflow's: the command that ran the pipeline


def interrupt_on_sigterm() -> None:
    """SIGTERM (what CI cancels and Kubernetes send) stops the run as Ctrl-C does, so that it ends as KILLED
    and its checkpoint stays resumable, instead of the process vanishing with its MLflow run RUNNING."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")

    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        signal.signal(signal.SIGTERM, interrupt)


def tracking_uri(context: KedroContext) -> str:
    """The tracking URI mlflow.yml sets (``$MLFLOW_TRACKING_URI`` by default), read before kedro-mlflow uses it."""
    try:
        return str(context.config_loader["mlflow"]["server"]["mlflow_tracking_uri"] or "")
    except (KeyError, TypeError, MissingConfigException):
        return ""


def as_logged(configured: dict[str, Any]) -> dict[str, Any]:
    """The parameters as a run logs them: of the data sources, only the one of the dataset it ingests, so that
    a digits run does not list every other dataset's settings (all are still validated)."""
    ingestion = configured.get("data_ingestion")
    if not isinstance(ingestion, dict) or not isinstance(ingestion.get("sources"), dict):
        return configured
    sources = {name: source for name, source in ingestion["sources"].items() if name == ingestion.get("dataset")}
    return {**configured, "data_ingestion": {**ingestion, "sources": sources}}


def configured_sections(pipeline: Pipeline, configured: dict[str, Any]) -> dict[str, Any]:
    """The parameter sections the pipeline's nodes take, as configured (before validation)."""
    names = {name for node in pipeline.nodes for name in node.inputs if name.startswith(PARAMS_PREFIX)}
    return {name.removeprefix(PARAMS_PREFIX): configured[name.removeprefix(PARAMS_PREFIX)] for name in sorted(names)}


def recorded_run(pipeline: Pipeline, catalog: DataCatalog, consumed: str, record: str) -> str | None:
    """The MLflow run ``record`` names, for a pipeline that reads ``consumed`` without producing it."""
    if consumed not in pipeline.inputs() or not catalog.exists(record):
        return None
    return catalog.load(record).get("run_id") or None


def training_run_evaluated(pipeline: Pipeline, catalog: DataCatalog) -> str | None:
    """The run that trained the model this pipeline evaluates without training it, if recorded."""
    return recorded_run(pipeline, catalog, MODEL_DATASET, RUN_RECORD_DATASET)


def run_promoted(pipeline: Pipeline, catalog: DataCatalog) -> str | None:
    """The run that registered the version this pipeline promotes without registering it, if recorded."""
    return recorded_run(pipeline, catalog, REGISTERED_DATASET, REGISTERED_DATASET)


class TypedParamsMlflowHook(MlflowHook):
    """kedro-mlflow's hook, logging a typed parameter section key by key, as configured.

    Nodes take their section as a validated model (Kedro's typed parameters); kedro-mlflow logs a
    model as one string, so this hands it the section's configured dict instead. It replaces the
    hook kedro-mlflow registers itself (``DISABLE_HOOKS_FOR_PLUGINS`` in ``settings.py``).
    """

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        super().after_context_created(context)
        self._configured = as_logged(context.config_loader["parameters"])

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog) -> None:
        """As kedro-mlflow's; a stage continuing a run adds its command to the run's instead of replacing it,
        and the command is written with Kedro 1.x's ``--pipelines`` (kedro-mlflow writes the deprecated option)."""
        continued = find_run(self.mlflow_config.tracking.run.id) if self.mlflow_config.tracking.run.id else None
        earlier = continued.data.tags.get(COMMAND_TAG, "") if continued is not None else ""
        super().before_pipeline_run(run_params, pipeline, catalog)
        if mlflow.active_run() is None:
            return
        command = MlflowClient().get_run(mlflow.active_run().info.run_id).data.tags.get(COMMAND_TAG, "")
        command = command.replace(" --pipeline=", " --pipelines=")
        commands = earlier.split(" && ") if earlier else []
        mlflow.set_tag(COMMAND_TAG, " && ".join(commands if command in commands else [*commands, command]))

    @hook_impl
    def before_node_run(self, node: Node, catalog: DataCatalog, inputs: dict[str, Any], is_async: bool) -> None:
        as_configured = {name: self._as_configured(name, value) for name, value in inputs.items()}
        super().before_node_run(node, catalog, as_configured, is_async)

    def _as_configured(self, name: str, value: Any) -> Any:
        if not isinstance(value, BaseModel):
            return value
        section = name.removeprefix(PARAMS_PREFIX)
        return self._configured[section] if section in self._configured else value.model_dump(mode="json")


class ProjectHooks:
    """Validates the parameters before any work and picks the MLflow run a pipeline continues; under
    torchrun, keeps the other processes from writing."""

    def __init__(self) -> None:
        self._context: KedroContext | None = None
        self._parameters: RunParameters | None = None
        self._configured: dict[str, Any] = {}
        self._finished_run: mlflow.entities.Run | None = None  # the finished run this pipeline continues
        self._lock: RunLock | None = None

    @hook_impl(tryfirst=True)  # before Kedro's own conversion of typed parameters, with clearer messages
    def after_context_created(self, context: KedroContext) -> None:
        self._context = context
        configured = context.config_loader["parameters"]
        self._parameters = validate_parameters(configured)
        self._configured = as_logged(configured)
        stage = os.environ.get("DVC_STAGE")  # set by DVC for every stage command
        if stage:
            refuse_parameters_hidden_from_dvc(context, stage)
        if is_main_process():  # the only process that talks to MLflow
            promotion = self._parameters.promotion
            bound_tracking_requests(promotion.request_timeout_s, promotion.max_retries)
            uri = tracking_uri(context)
            check_tracking_server(uri)
            create_local_store(uri)

    @hook_impl
    def after_catalog_created(self, catalog: CatalogProtocol) -> None:
        if not is_main_process():
            keep_outputs_in_memory(catalog)

    @hook_impl
    def on_node_error(self, error: Exception, node: Node, catalog: DataCatalog, inputs: dict[str, Any]) -> None:
        """A refused promotion still writes its decision file (outcome ``refused``), so no earlier one looks current."""
        if DECISION_DATASET in node.outputs and isinstance(error, PromotionRefused):
            catalog.save(DECISION_DATASET, refused_decision(inputs[REGISTERED_DATASET], error))

    @hook_impl(tryfirst=True)  # before kedro-mlflow starts a run
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog) -> None:
        if is_main_process():  # the one process that writes files; released when the run ends, however it ends
            self._lock = RunLock(Path(self._context.project_path))
            self._lock.acquire()
            interrupt_on_sigterm()
        if self._parameters.evaluation.inception and EVALUATION_NODE in {node.name for node in pipeline.nodes}:
            # Before any work: download the weights, or stop; and refuse a file that is not Inception-v3's.
            inception_network(inception_weights(self._parameters.evaluation.inception_weights))
        config = getattr(self._context, "mlflow", None)
        names = run_params.get("pipeline_names") or [run_params.get("pipeline_name") or DEFAULT]
        if config is None or mlflow.active_run() is not None:
            return  # no kedro-mlflow, or an orchestrator already opened the run
        if all(name in config.tracking.disable_tracking.pipelines for name in names):
            return
        end_runs_of_dead_processes(config.tracking.experiment.name)
        promoted_in = run_promoted(pipeline, catalog)
        if promoted_in is None and REGISTERED_DATASET in pipeline.inputs():
            # The promotion stage alone goes into the run of the version it promotes; with none, nowhere.
            config.tracking.disable_tracking.pipelines = [*config.tracking.disable_tracking.pipelines, *names]
            return
        trains = TRAINING_NODE in {node.name for node in pipeline.nodes}
        run = select_run(
            config.tracking.experiment.name,
            logged_form(self._configured if trains else configured_sections(pipeline, self._configured)),
            interrupted=self._interrupted_training() if trains else None,
            trained_in=training_run_evaluated(pipeline, catalog) or promoted_in,
        )
        if run is not None:
            config.tracking.run.id = run.info.run_id
            config.tracking.run.name = run.info.run_name
            if run.info.status == "FINISHED":
                self._finished_run = run
        elif trains and not config.tracking.run.name:
            config.tracking.run.name = run_name(self._configured)

    @hook_impl(trylast=True)  # after kedro-mlflow has ended the run as FAILED
    def on_pipeline_error(self, error: Exception) -> None:
        """A stage that fails in a run an earlier stage finished (a re-evaluation of a corrupt file, say) leaves that
        run as it was, FINISHED at its end time; the failure is kept as a tag, and the error is reported."""
        self._release_lock()
        run, self._finished_run = self._finished_run, None
        if run is None or not is_main_process():
            return
        client = MlflowClient()
        client.set_terminated(run.info.run_id, status="FINISHED", end_time=run.info.end_time)
        failure = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        client.set_tag(run.info.run_id, "failed_rerun", failure)

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _interrupted_training(self) -> tuple[CheckpointRecord, dict[str, Any]] | None:
        """The unfinished checkpoint of this training, if it may resume, with this run's trajectory."""
        training = self._parameters.training
        if training.resume == "never" or training.checkpoint.every_epochs == 0:
            return None
        try:
            record = training.checkpoint.store(Path(self._context.project_path)).latest()
        except CheckpointError:
            return None  # the training node reports it
        if record is None:
            return None
        with parameter_errors("training"):
            device_type = process_device(training.device).type
        return record, training.trajectory(launched_world_size(), device_type)


class RunRecordHooks:
    """Tags the run kedro-mlflow opened with the code and data it ran on, gives a training run what the
    stages upstream of it logged when they ran alone, and says at the end where the results are."""

    def __init__(self) -> None:
        self._project_path = Path.cwd()
        self._configured: dict[str, Any] = {}
        self._run: mlflow.entities.Run | None = None

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self._project_path = Path(context.project_path)
        self._configured = as_logged(context.config_loader["parameters"])

    @hook_impl(trylast=True)  # after kedro-mlflow has started (or resumed) the run
    def before_pipeline_run(self, pipeline: Pipeline, catalog: DataCatalog) -> None:
        self._run = mlflow.active_run()
        if self._run is None:
            return
        set_tags({PROCESS_TAG: this_process()})
        end_as_killed_at_exit(self._run.info.run_id)
        trains = RUN_RECORD_DATASET in pipeline.all_outputs()
        # The code that evaluated a model is recorded beside, not over, the code that trained it.
        code = git_state(prefix="" if trains else "evaluation_")
        set_tags(code)
        if trains:
            self._describe_run(code)
            self._log_upstream_stages(pipeline, catalog)

    def _describe_run(self, code: dict[str, str]) -> None:
        """The DVC experiment this run belongs to, if any, and a Description saying how to get back to it."""
        experiment = dvc_experiment_tags()
        if experiment:
            command = f"dvc exp run -n {experiment['dvc.experiment']}"
        elif os.environ.get("DVC_STAGE"):
            command = "dvc repro"
        else:
            command = MlflowClient().get_run(self._run.info.run_id).data.tags.get(COMMAND_TAG, "kedro run")
        set_tags({**experiment, DESCRIPTION_TAG: run_description({**code, **experiment}, command)})

    def _log_upstream_stages(self, pipeline: Pipeline, catalog: DataCatalog) -> None:
        """Their parameters and their MLflow artifacts (dataset card, data profile), read from the files those
        stages left; nothing is logged twice when they run in this same session (kedro-mlflow logs them)."""
        stages = stage_pipelines()
        for name in upstream_pipelines(pipeline, stages):
            artifacts = []
            for dataset_name in stages[name].all_outputs():
                dataset = catalog.get(dataset_name)
                artifact_path = getattr(dataset, "artifact_path", None)
                if artifact_path is not None and dataset.filepath.is_file():
                    artifacts.append((dataset.filepath, artifact_path))
            log_stage_record(configured_sections(stages[name], self._configured), artifacts)

    @hook_impl(trylast=True)
    def before_node_run(self, node: Node, catalog: DataCatalog, inputs: dict[str, Any]) -> None:
        if RUN_RECORD_DATASET in node.outputs and mlflow.active_run() is not None:
            self._tag_data_version(catalog)

    def _tag_data_version(self, catalog: DataCatalog) -> None:
        raw_dataset = catalog.get(RAW_DATASET)
        if raw_dataset is None:
            return
        raw_file = raw_dataset.filepath
        if not raw_file.is_file():
            logger.warning("%s is missing: the run cannot record which data version trained the model", raw_file)
            return
        shown = raw_file.relative_to(self._project_path) if raw_file.is_relative_to(self._project_path) else raw_file
        record = DatasetRecord.from_metadata(read_metadata(raw_file), str(raw_file))
        tag_data_version(record, dvc_file_hash(raw_file), shown.as_posix())

    @hook_impl
    def after_pipeline_run(self) -> None:
        if self._run is not None:
            completed(self._run.info.run_id)
        if is_main_process():
            print(run_summary(self._project_path, self._run))
