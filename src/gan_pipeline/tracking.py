"""The nodes' bridge to MLflow: nodes reach MLflow (runs, system metrics, the registry) only through here.

Every function used by nodes is a no-op when no MLflow run is active, so nodes also run under
a bare ``SequentialRunner`` in tests or without kedro-mlflow.
"""

import importlib.util
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch
from mlflow import MlflowClient
from mlflow.entities import LifecycleStage, Run
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.types.schema import Array, ColSpec, Schema, TensorSpec
from mlflow.utils.async_logging.run_operations import RunOperations
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

from gan_pipeline.config import flatten_params
from gan_pipeline.gan import networks
from gan_pipeline.gan.checkpoints import CheckpointRecord
from gan_pipeline.gan.serialization import generator_from_tensors
from gan_pipeline.io import TensorsDataset
from gan_pipeline.registry import CHALLENGER, bounded_http, run_gate

logger = logging.getLogger(__name__)

PYFUNC_MODEL_FILE = Path(__file__).with_name("generator_pyfunc.py")
NETWORK_MODULE = "gan_generator_network"  # the name generator_pyfunc.py imports the logged network under

logger = logging.getLogger(__name__)


class StepMetricsLogger:
    """Per-step metrics for the active run, logged in the background, skipping steps the run already holds.

    A resumed run replays its history from the checkpoint and recomputes the steps between the
    checkpoint and the interruption; each step lands in MLflow once, with no gap. Written synchronously
    to a SQLite store, the writes cost the default run a few percent of its training time, so they
    queue behind training; leaving the ``with`` block waits for them and raises if one failed.
    """

    def __init__(self, key: str = "d_loss") -> None:
        active = mlflow.active_run()
        history = MlflowClient().get_metric_history(active.info.run_id, key) if active is not None else []
        self.last_logged_step = max((metric.step for metric in history), default=0)
        self.pending: list[RunOperations] = []

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        if step > self.last_logged_step and mlflow.active_run() is not None:
            values = {k: float(v) for k, v in metrics.items() if k not in ("epoch", "step")}
            self.pending.append(mlflow.log_metrics(values, step=step, synchronous=False))
            self.last_logged_step = step

    def __enter__(self) -> "StepMetricsLogger":
        return self

    def __exit__(self, *exc_info: object) -> None:
        pending, self.pending = self.pending, []
        for operation in pending:
            operation.wait()


def active_run_id() -> str | None:
    active = mlflow.active_run()
    return active.info.run_id if active is not None else None


def tag_alert(key: str, message: str) -> None:
    """A health warning from training, kept as the run tag ``health.<key>``."""
    set_tags({f"health.{key}": message})


def resumable_run_id(record: CheckpointRecord | None, trajectory: dict[str, Any], params: dict[str, Any]) -> str | None:
    """The MLflow run of an unfinished checkpoint of this very training, if it can take this run's parameters.

    MLflow refuses to change a logged parameter, so a rerun whose parameters differ (say a
    different ``evaluation.seed``) resumes training from the checkpoint but logs to a new run.
    """
    if record is None or record.completed or not record.tracking_run_id or record.trajectory != trajectory:
        return None
    try:
        run = MlflowClient().get_run(record.tracking_run_id)
    except MlflowException:
        logger.warning(
            "The checkpoint's MLflow run %s is not in this tracking store; starting a new run", record.tracking_run_id
        )
        return None
    if run.info.lifecycle_stage != "active":
        return None
    logged = run.data.params
    changed = sorted(
        key for key, value in flatten_params(params).items() if key in logged and logged[key] != str(value)
    )
    if changed:
        logger.warning(
            "Training resumes into a new MLflow run: parameters %s differ from run %s", changed, run.info.run_id
        )
        return None
    return run.info.run_id


def log_metrics(metrics: dict[str, float]) -> None:
    if mlflow.active_run() is not None:
        mlflow.log_metrics(metrics)


def log_params(params: dict[str, Any]) -> None:
    """Log params as kedro-mlflow does: a value too long for an MLflow param becomes a tag."""
    if mlflow.active_run() is None:
        return
    values = {key: str(value) for key, value in params.items()}
    mlflow.log_params({key: value for key, value in values.items() if len(value) <= MAX_PARAM_VAL_LENGTH})
    mlflow.set_tags({key: value for key, value in values.items() if len(value) > MAX_PARAM_VAL_LENGTH})


def set_tags(tags: dict[str, Any]) -> None:
    """Set the tags whose value is known; ``None`` values are left out rather than logged as "None"."""
    if mlflow.active_run() is not None:
        mlflow.set_tags({key: str(value) for key, value in tags.items() if value is not None})


def active_run_record() -> dict[str, str]:
    """The run logging right now, saved beside the model so that later stages can log into it.

    Empty when no run is active (a bare runner, or tracking switched off for the pipeline).
    """
    run = mlflow.active_run()
    if run is None:
        return {}
    return {"run_id": run.info.run_id, "run_name": run.info.run_name, "experiment_id": run.info.experiment_id}


def find_run(run_id: str) -> Run | None:
    """The run with this id in the current tracking store, or None if the store lacks it or it was deleted."""
    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException:
        return None
    return None if run.info.lifecycle_stage == LifecycleStage.DELETED else run


def changed_params(run: Run, params: dict[str, str]) -> dict[str, tuple[str, str]]:
    """``{key: (logged, new)}`` for params the run already holds with another value (MLflow refuses to change them)."""
    logged = run.data.params
    return {key: (logged[key], value) for key, value in params.items() if key in logged and logged[key] != value}


@contextmanager
def system_metrics_logged(sampling_interval_s: float) -> Iterator[bool]:
    """Log CPU, memory, disk, network and (with nvidia-ml-py) GPU use as ``system/*`` metrics while inside.

    Yields whether it is logging: it needs an active run, psutil, and a non-zero interval.
    """
    run = mlflow.active_run()
    if run is None or sampling_interval_s <= 0 or importlib.util.find_spec("psutil") is None:
        yield False
        return
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run.info.run_id, sampling_interval=sampling_interval_s)
    monitor.start()
    try:
        yield True
    finally:
        monitor.finish()


def generator_signature(sample_shape: tuple[int, ...]) -> ModelSignature:
    """Either ``num_samples`` (+ optional ``seed``) in one row, or one ``latent`` vector per row -> samples."""
    inputs = Schema(
        [
            ColSpec("long", "num_samples", required=False),
            ColSpec("long", "seed", required=False),
            ColSpec(Array("float"), "latent", required=False),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *sample_shape))]))


def _pinned(*packages: str) -> list[str]:
    return [f"{name}=={version(name).split('+')[0]}" for name in packages]


class _GeneratorModel:
    """An MLflow "flavor module" that saves one model directory with two flavours of the generator.

    ``python_function``: the pyfunc logged as code (``generator_pyfunc.py``), for ``mlflow.pyfunc`` and
    ``mlflow models serve``. ``pytorch``: the network exported by ``torch.export`` (pt2, no pickle), for
    ``mlflow.pytorch.load_model``, which returns a module mapping a latent batch to samples.
    """

    @staticmethod
    def save_model(path: str, mlflow_model: Model, network: torch.nn.Module, **pyfunc_kwargs: Any) -> None:
        mlflow.pyfunc.save_model(path, mlflow_model=mlflow_model, **pyfunc_kwargs)
        arch = network.arch
        signature = ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, arch.latent_dim))]),
            outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *arch.sample_shape))]),
        )
        with tempfile.TemporaryDirectory() as tmp:
            exported = Path(tmp) / "pytorch"
            mlflow.pytorch.save_model(
                network,
                exported,
                serialization_format="pt2",
                input_example=torch.zeros(4, arch.latent_dim),
                signature=signature,
                pip_requirements=_pinned("torch"),  # the pyfunc's requirements are the model's; this skips inference
            )
            shutil.copytree(exported / "data", Path(path) / "data")
            mlflow_model.add_flavor("pytorch", **Model.load(exported).flavors["pytorch"])
        mlflow_model.save(Path(path) / "MLmodel")


def log_generator(
    generator: dict[str, Any], registered_model_name: str | None, version_tags: dict[str, str]
) -> dict[str, Any]:
    """Log the generator as a pyfunc model (code + safetensors weights) with a pytorch flavour; register it
    as the new challenger.

    ``generator`` is the weights file's content (arrays plus the architecture in ``__metadata__``).
    """
    if mlflow.active_run() is None:
        return {"logged": False}
    network = generator_from_tensors(generator)
    with tempfile.TemporaryDirectory() as tmp:
        network_code = Path(tmp) / f"{NETWORK_MODULE}.py"
        shutil.copyfile(networks.__file__, network_code)
        weights = Path(tmp) / "generator.safetensors"
        TensorsDataset(str(weights)).save(generator)
        info = Model.log(
            None,
            _GeneratorModel,
            name="generator",
            network=network,
            python_model=PYFUNC_MODEL_FILE,
            code_paths=[str(network_code)],
            artifacts={"weights": str(weights)},
            signature=generator_signature(network.arch.sample_shape),
            input_example={"num_samples": 4, "seed": 0},
            pip_requirements=_pinned("torch", "safetensors", "numpy", "pandas"),
            model_config={"device": "auto"},
        )
    logged = {"logged": True, "model_uri": info.model_uri, "run_id": info.run_id}
    if not registered_model_name:
        return logged
    registered = mlflow.register_model(info.model_uri, registered_model_name, tags=version_tags)
    mlflow.MlflowClient().set_registered_model_alias(registered_model_name, CHALLENGER, registered.version)
    logger.info("Registered %s version %s as %r", registered_model_name, registered.version, CHALLENGER)
    return {
        **logged,
        "registered_model_name": registered_model_name,
        "registered_model_version": int(registered.version),
    }


def registered_generator(name: str, alias: str) -> tuple[str, dict[str, str], dict[str, Any]] | None:
    """The version holding ``alias`` of ``name``: its number, its tags and its generator's weights file content.

    None when no run is active, the model is not registered yet, or no version holds the alias.
    """
    if mlflow.active_run() is None:
        return None
    client = MlflowClient()
    try:
        model_version = client.get_model_version_by_alias(name, alias)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{model_version.version}", dst_path=tmp))
        generator = TensorsDataset(str(local / "artifacts" / "generator.safetensors")).load()
    return str(model_version.version), dict(model_version.tags), generator


def promote(name: str, version: str, margin: float, timeout_s: int, max_retries: int) -> dict[str, Any]:
    """Run the promotion gate on the tracking server this run logs to; tag the run with the outcome."""
    decision = run_gate(
        mlflow.get_tracking_uri(),
        name,
        version,
        margin,
        registry_uri=mlflow.get_registry_uri(),
        timeout_s=timeout_s,
        max_retries=max_retries,
    )
    if mlflow.active_run() is not None:
        with bounded_http(timeout_s, max_retries):
            set_tags({"promotion.decision": decision.outcome, "promotion.model_version": version})
    return {
        "outcome": decision.outcome,
        "reason": decision.reason,
        "registered_model_name": name,
        "challenger_version": decision.challenger.version,
        "champion_version": decision.challenger.version if decision.moves_champion else decision.champion.version,
    }
