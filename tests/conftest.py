"""Shared fixtures: a tiny real dataset and tiny parameters, so tests run in seconds."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
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


PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"


def copy_project(root: Path) -> Path:
    """A fresh copy of the project (code, conf, empty data layers) under git, as a clone would be."""
    for name in ("conf", "src", "pyproject.toml", ".telemetry", ".gitignore"):
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "local"))
        else:
            shutil.copy2(source, root / name)
    (root / "conf" / "local").mkdir(exist_ok=True)
    for layer in ("01_raw", "05_model_input", "06_models", "08_reporting"):
        (root / "data" / layer).mkdir(parents=True)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=root, check=True)
    return root


VENV_BIN = Path(sys.executable).parent  # kedro, torchrun


def project_env() -> dict[str, str]:
    """This environment without MLFLOW_* variables: runs use the project-local MLflow store."""
    return {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}


def run_kedro(project: Path, *args: str) -> subprocess.CompletedProcess:
    """``kedro ...`` in ``project`` with the default (project-local) MLflow store."""
    return subprocess.run(
        [str(VENV_BIN / "kedro"), *args],
        cwd=project,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
