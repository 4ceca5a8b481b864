"""The bridge to MLflow: the only module besides hooks that imports it.

Every function used by nodes is a no-op when no MLflow run is active, so nodes also run under
a bare ``SequentialRunner`` in tests or without kedro-mlflow.
"""

from typing import Any

import mlflow
import numpy as np
import torch
from mlflow import MlflowClient
from mlflow.entities import LifecycleStage, Run
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

from gan_pipeline.gan.networks import Generator


def log_step_metrics(step: int, metrics: dict[str, float]) -> None:
    if mlflow.active_run() is not None:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if k not in ("epoch", "step")}, step=step)


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
