"""A fresh copy of the project, as a clone would be, and `kedro` run in it as a user would.

Each `kedro` command is a process of its own, as on a user's machine, but forked from a warm one: a
multiprocessing fork server that has imported the heavy libraries (torch, MLflow, Kedro, pandas, ...)
once. A cold `kedro` spends 5-6 s of a 2-core machine's CPU on those imports before its first node; the
suite runs dozens. The project's own code is not pre-imported: each run imports it from its copy.
"""

import atexit
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from multiprocessing.context import ForkServerContext
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent  # kedro, torchrun, gan-pipeline
KEDRO = str(VENV_BIN / "kedro")
SHARED_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"
KEDRO_TIMEOUT_S = 900
# What every `kedro run` of this project imports anyway; imported, not run: nothing here starts a thread.
WARM_IMPORTS = (
    "torch",
    "mlflow",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "kedro.framework.cli",
    "kedro.framework.session",
    "mlflow.pyfunc",
    "kedro_mlflow.io.artifacts",
    "pandas",
    "scipy.stats",
    "sklearn.datasets",
    "matplotlib.pyplot",
    "safetensors.torch",
    "pydantic",
)


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


@cache
def _warm_processes() -> ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(WARM_IMPORTS))
    return context


def kedro(project: Path, *args: str, tracking_uri: str | None = None) -> subprocess.CompletedProcess:
    """``kedro <args>`` in ``project``, in a process of its own; MLflow logs to ``tracking_uri`` (default: the
    project's SQLite store)."""
    env = project_env()
    if tracking_uri is not None:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    with tempfile.TemporaryDirectory(prefix="kedro-output-") as folder:
        stdout, stderr = Path(folder, "stdout"), Path(folder, "stderr")
        stdout.touch(), stderr.touch()
        process = _warm_processes().Process(target=_kedro_cli, args=(str(project), args, env, str(stdout), str(stderr)))
        process.start()
        process.join(KEDRO_TIMEOUT_S)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired([KEDRO, *args], KEDRO_TIMEOUT_S)
        read = {path: path.read_text(errors="replace") for path in (stdout, stderr)}
    return subprocess.CompletedProcess([KEDRO, *args], process.exitcode, read[stdout], read[stderr])


def _kedro_cli(project: str, args: tuple[str, ...], env: dict[str, str], stdout: str, stderr: str) -> None:
    """The `kedro` console script, in a forked process: its folder, environment, arguments and output files."""
    os.chdir(project)
    os.environ.clear()
    os.environ.update(env)
    for descriptor, path in ((1, stdout), (2, stderr)):
        with open(path, "wb") as file:
            os.dup2(file.fileno(), descriptor)
    sys.argv = [KEDRO, *args]
    from kedro.framework.cli import main

    code: int | str | None = 0
    try:
        main()
    except SystemExit as exit_:
        code = exit_.code
    finally:
        atexit._run_exitfuncs()  # as the interpreter does on exit; multiprocessing's children skip them
    sys.exit(code)
