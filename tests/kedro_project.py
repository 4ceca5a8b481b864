"""A fresh copy of the project, as a clone would be, and `kedro` run in it as a user would (started warm:
tests/warm_kedro.py)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.warm_kedro import shim

PROJECT_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent  # kedro, torchrun, gan-pipeline
KEDRO = str(VENV_BIN / "kedro")
SHARED_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"


def copy_project(root: Path) -> Path:
    """Code, conf and empty data layers under ``root``, committed to a new git repository."""
    for name in ("conf", "src", "pyproject.toml", ".telemetry", ".gitignore"):
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "local"))
        else:
            shutil.copy2(source, root / name)
    (root / "conf" / "local").mkdir(exist_ok=True)
    for layer in ("01_raw", "05_model_input", "06_models", "08_reporting"):
        (root / "data" / layer).mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], cwd=root, check=True)
    return root


def project_env() -> dict[str, str]:
    """This environment without MLFLOW_* variables: runs use the project-local MLflow store."""
    return {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}


def kedro(project: Path, *args: str, tracking_uri: str | None = None) -> subprocess.CompletedProcess:
    """``kedro <args>`` in ``project``; MLflow logs to ``tracking_uri`` (default: the project's SQLite store)."""
    env = project_env()
    if tracking_uri is not None:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return subprocess.run(
        [str(shim()), *args], cwd=project, env=env, capture_output=True, text=True, timeout=900, check=False
    )
