"""The node-side bridge to MLflow: the only module besides hooks that imports it.

Every function is a no-op when no MLflow run is active, so nodes also run under a bare
``SequentialRunner`` in tests or without kedro-mlflow.
"""

import logging
from typing import Any

import mlflow
import numpy as np
import torch
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from gan_pipeline.gan.checkpoints import CheckpointRecord
from gan_pipeline.gan.networks import Generator

logger = logging.getLogger(__name__)


def log_step_metrics(step: int, metrics: dict[str, float]) -> None:
    if mlflow.active_run() is not None:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if k not in ("epoch", "step")}, step=step)


class StepMetricsLogger:
    """Per-step metrics for the active run, skipping steps the run already holds.

    A resumed run replays its history from the checkpoint and recomputes the steps between the
    checkpoint and the interruption; each step lands in MLflow once, with no gap.
    """

    def __init__(self, key: str = "d_loss") -> None:
        active = mlflow.active_run()
        history = MlflowClient().get_metric_history(active.info.run_id, key) if active is not None else []
        self.last_logged_step = max((metric.step for metric in history), default=0)

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        if step > self.last_logged_step:
            log_step_metrics(step, metrics)
            self.last_logged_step = step


def active_run_id() -> str | None:
    active = mlflow.active_run()
    return active.info.run_id if active is not None else None


def tag_alert(key: str, message: str) -> None:
    """A health warning from training, kept as the run tag ``health.<key>``."""
    set_tags({f"health.{key}": message})


def flatten_params(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"training": {"epochs": 2}}`` -> ``{"training.epochs": 2}``, as kedro-mlflow logs them."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(flatten_params(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


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


def set_tags(tags: dict[str, Any]) -> None:
    if mlflow.active_run() is not None:
        mlflow.set_tags({key: str(value) for key, value in tags.items()})


def log_generator(generator: Generator, registered_model_name: str | None) -> dict[str, Any]:
    """Log the generator (torch.export format: no pickle) and register it under a name.

    Input: a latent batch ``(N, latent_dim)`` float32; output: images ``(N, C, H, W)`` in [-1, 1].
    """
    if mlflow.active_run() is None:
        return {"logged": False}
    generator = generator.eval()
    latent = np.random.default_rng(0).standard_normal((4, generator.arch.latent_dim)).astype(np.float32)
    with torch.no_grad():
        images = generator(torch.from_numpy(latent)).numpy()
    info = mlflow.pytorch.log_model(
        generator,
        name="generator",
        signature=infer_signature(latent, images),
        input_example=latent,
        registered_model_name=registered_model_name,
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
    )
    return {
        "logged": True,
        "model_uri": info.model_uri,
        "run_id": info.run_id,
        "registered_model_name": registered_model_name or "",
        "registered_model_version": int(info.registered_model_version or 0),
    }
