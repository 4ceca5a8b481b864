"""Shared fixtures: a tiny real dataset and tiny parameters, so tests run in seconds."""

from typing import Any

import numpy as np
import pytest
import torch
from kedro.framework.project import configure_project

from gan_pipeline.datasets import load_dataset

configure_project("gan_pipeline")

TINY_TRAINING = {
    "epochs": 2,
    "batch_size": 32,
    "log_every_steps": 5,
    "sample_every_epochs": 1,
    "num_fixed_samples": 16,
    "progress_bar": False,
    "device": "cpu",
    "checkpoint": {"every_epochs": 0},  # tests that checkpoint pass their own tmp_path directory
}
TINY_EVALUATION = {"judge": {"epochs": 2}, "device": "cpu", "register_model": False}


@pytest.fixture(autouse=True)
def _single_thread_torch():
    """Keep CPU tests deterministic and polite on 2-core CI machines."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits_raw() -> dict[str, Any]:
    raw = load_dataset("digits", {}, "data/01_raw")
    return {"samples": raw.samples, "labels": raw.labels, "__metadata__": {"dataset": "digits"}}


@pytest.fixture
def tiny_training_params() -> dict[str, Any]:
    return dict(TINY_TRAINING)


@pytest.fixture
def tiny_evaluation_params() -> dict[str, Any]:
    return {key: (dict(value) if isinstance(value, dict) else value) for key, value in TINY_EVALUATION.items()}


def scaled(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float() / 127.5 - 1
