"""A DVC project as users hold one: a git repository of the project's tracked files, its clones, and a shell
that runs `dvc`, `kedro` and `git` in them with a test environment (HOME in a temporary folder)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib
import yaml
from mlflow import MlflowClient
from mlflow.entities import Run

from tests.warm_kedro import shim

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def environment(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MLFLOW_", "DVC_", "KEDRO_"))}
    env.update(
        HOME=str(home),
        # The stages call `kedro`, as in an activated venv; started warm (tests/warm_kedro.py).
        PATH=os.pathsep.join((str(shim().parent), str(BIN), env.get("PATH", ""))),
        DVC_NO_ANALYTICS="1",
        OMP_NUM_THREADS="1",  # polite on shared 2-core machines
        MPLCONFIGDIR=matplotlib.get_cachedir(),  # reuse the font cache instead of rebuilding it in HOME
        COLUMNS="200",  # Kedro's rich console wraps error messages at the terminal width
    )
    return env


class Shell:
    """Runs commands in one project folder with the test environment; failures show their output."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env

    def run(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            args, cwd=self.cwd, env={**self.env, **env}, capture_output=True, text=True, timeout=600, check=False
        )
        if check:
            assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        return result

    def dvc(self, *args: str) -> subprocess.CompletedProcess:
        return self.run(str(BIN / "dvc"), *args)

    def dvc_json(self, *args: str) -> Any:
        return json.loads(self.dvc(*args, "--json").stdout)

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-qm", message)

    def set_params(self, section: str, values: dict[str, Any]) -> None:
        """Edit conf/base/parameters_<section>.yml as a user would (comments are lost in this copy only)."""
        path = self.cwd / "conf" / "base" / f"parameters_{section}.yml"
        params = yaml.safe_load(path.read_text())
        merge(params[section], values)
        path.write_text(yaml.safe_dump(params, sort_keys=False))

    def lock(self) -> dict[str, Any]:
        return yaml.safe_load((self.cwd / "dvc.lock").read_text())

    def runs(self) -> list[Run]:
        client = MlflowClient(tracking_uri=f"sqlite:///{self.cwd / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("gan-pipeline")
        return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def merge(target: dict[str, Any], values: dict[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, dict):
            merge(target[key], value)
        else:
            target[key] = value


def project_repository(root: Path, env: dict[str, str], params: dict[str, Any]) -> Path:
    """The working tree as it would be pushed (tracked and not-ignored files) in ``root``, with ``params`` set."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = PROJECT_ROOT / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    shell = Shell(root, env)
    shell.run("git", "init", "-q", "-b", "main")
    shell.run("git", "config", "user.name", "Test")
    shell.run("git", "config", "user.email", "test@example.com")
    for section, values in params.items():
        shell.set_params(section, values)
    shell.commit("project with tiny parameters")
    return root


def clone(source: Path, target: Path, env: dict[str, str]) -> Shell:
    subprocess.run(["git", "clone", "-q", str(source), str(target)], env=env, check=True)
    shell = Shell(target, env)
    shell.run("git", "config", "user.name", "Test")
    shell.run("git", "config", "user.email", "test@example.com")
    return shell
