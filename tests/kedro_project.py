"""A fresh copy of the project (code, conf, empty data layers) under git, as a clone would be, and a
way to run ``kedro`` in it without the caller's MLflow environment."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DATA_LAYERS = ("01_raw", "05_model_input", "06_models", "08_reporting")


def copy_project(root: Path) -> Path:
    for name in ("conf", "src", "pyproject.toml", ".telemetry", ".gitignore"):
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "local"))
        else:
            shutil.copy2(source, root / name)
    (root / "conf" / "local").mkdir(exist_ok=True)
    for layer in DATA_LAYERS:
        (root / "data" / layer).mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], cwd=root, check=True)
    return root


def clean_env() -> dict[str, str]:
    """The caller's environment without MLflow or torchrun variables, single-threaded torch."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MLFLOW_", "TORCHELASTIC_"))}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return {**env, "OMP_NUM_THREADS": "1"}


def kedro(project: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "kedro"), *args],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
