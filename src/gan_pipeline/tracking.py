"""The node-side bridge to MLflow: the only module besides hooks that imports it.

Every function is a no-op when no MLflow run is active, so nodes also run under a bare
``SequentialRunner`` in tests or without kedro-mlflow.
"""

from typing import Any

import mlflow
import numpy as np
import torch
from mlflow.models import infer_signature

from gan_pipeline.gan.networks import Generator


def log_step_metrics(step: int, metrics: dict[str, float]) -> None:
    if mlflow.active_run() is not None:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if k not in ("epoch", "step")}, step=step)


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
