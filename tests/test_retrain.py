"""`make retrain` for real in a clone: a local DVC remote (HOME's default one) and a local MLflow store.

The steps run in order (module fixtures): a first retraining registers the champion; new data (more
digits) makes a challenger the gate decides on; a third run with nothing changed touches nothing;
then failures (tracking server down, a training stage that fails) push nothing and keep the champion.
"""

import subprocess
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from tests.dvc_project import BIN, Shell, clone, environment, project_repository
from tests.test_dvc_workflow import TINY

pytestmark = pytest.mark.slow

MODEL = "gan-generator-digits"
REPORT = Path("data/08_reporting/retrain_report.md")


class Retrainer(Shell):
    def retrain(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        """`make retrain` with this environment's venv (`-o dev`: already installed, do not reinstall)."""
        command = ["make", "-o", "dev", "retrain", f"VENV={BIN.parent}", f"RETRAIN_ARGS={' '.join(args)}"]
        return self.run(*command, check=False, **env)

    def registry(self) -> tuple[list[str], dict[str, str]]:
        client = MlflowClient(tracking_uri=f"sqlite:///{self.cwd / 'mlflow.db'}")
        versions = sorted(str(v.version) for v in client.search_model_versions(f"name='{MODEL}'"))
        aliases = client.get_registered_model(MODEL).aliases
        return versions, {alias: str(version) for alias, version in aliases.items()}

    def report(self) -> str:
        return (self.cwd / REPORT).read_text()


def remote_files(home: Path) -> set[Path]:
    remote = home / ".cache" / "gan-pipeline" / "dvc-remote"
    return {path for path in remote.rglob("*") if path.is_file()}


def outcome(result: subprocess.CompletedProcess) -> dict[str, Any]:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return {"result": result}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, home) -> Retrainer:
    env = environment(home)
    params = {  # tiny, registering, and the first 1,200 digits: later retrainings see "new data"
        **TINY,
        "evaluation": {**TINY["evaluation"], "register_model": True},
        "data_ingestion": {"sources": {"digits": {"max_samples": 1200}}},
    }
    origin = project_repository(tmp_path_factory.mktemp("origin"), env, params)
    cloned = clone(origin, tmp_path_factory.mktemp("clones") / "team", env)
    return Retrainer(cloned.cwd, env)


@pytest.fixture(scope="module")
def first(workspace, home) -> dict[str, Any]:
    result = workspace.retrain()
    registry, report, remote = workspace.registry(), workspace.report(), remote_files(home)
    workspace.commit("retrain: first dvc.lock")  # the pull request merged
    return {**outcome(result), "registry": registry, "report": report, "remote": remote}


@pytest.fixture(scope="module")
def second(first, workspace, home) -> dict[str, Any]:
    workspace.set_params("data_ingestion", {"sources": {"digits": {"max_samples": None}}})  # new data arrived
    workspace.commit("all 1,797 digits")
    result = workspace.retrain()
    registry, report, remote = workspace.registry(), workspace.report(), remote_files(home)
    workspace.commit("retrain: second dvc.lock")
    return {**outcome(result), "registry": registry, "report": report, "remote": remote}


@pytest.fixture(scope="module")
def third(second, workspace, home) -> dict[str, Any]:
    runs_before = len(workspace.runs())
    lock_before = (workspace.cwd / "dvc.lock").read_text()
    result = workspace.retrain()
    return {
        **outcome(result),
        "registry": workspace.registry(),
        "report": workspace.report(),
        "runs": (runs_before, len(workspace.runs())),
        "lock_unchanged": lock_before == (workspace.cwd / "dvc.lock").read_text(),
        "status": workspace.run(str(BIN / "dvc"), "status").stdout,
    }


@pytest.fixture(scope="module")
def tracking_down(third, workspace, home) -> dict[str, Any]:
    remote = remote_files(home)
    result = workspace.retrain("--retries", "0", "--timeout", "2", MLFLOW_TRACKING_URI="http://127.0.0.1:9")
    return {"result": result, "remote_unchanged": remote == remote_files(home), "registry": workspace.registry()}


@pytest.fixture(scope="module")
def failing_stage(tracking_down, workspace, home) -> dict[str, Any]:
    """New data arrives, but the training stage fails (an invalid learning rate stops it at validation)."""
    remote = remote_files(home)
    workspace.set_params("data_ingestion", {"sources": {"digits": {"max_samples": 1500}}})
    workspace.set_params("training", {"generator_lr": -1.0})
    result = workspace.retrain()
    return {
        "result": result,
        "remote_unchanged": remote == remote_files(home),
        "registry": workspace.registry(),
        "report": workspace.report(),
    }


def test_the_first_retraining_registers_the_champion_pushes_and_reports(first):
    versions, aliases = first["registry"]
    assert versions == ["1"]
    assert aliases["champion"] == "1"
    assert first["remote"], "dvc push sent nothing to the remote"
    report = first["report"]
    assert report.startswith("# Retraining succeeded")
    assert "**first_champion**" in report
    assert "data version: `" in report and "data/01_raw/raw_dataset.safetensors" in report
    assert "stages rerun: data_ingestion, data_processing, training, evaluation, promotion" in report


def test_new_data_makes_a_challenger_that_the_gate_decides_on_and_the_report_shows_both(first, second):
    versions, aliases = second["registry"]
    assert versions == ["1", "2"]
    assert aliases["challenger"] == "2"
    decision = "promoted" if aliases["champion"] == "2" else "kept"
    report = second["report"]
    assert f"**{decision}**" in report
    assert "| metric | challenger (v2) | champion before (v1) |" in report
    assert "| `frechet_distance` |" in report
    assert "challenger: version 2, MLflow run `" in report
    assert "champion it was compared with: version 1" in report
    assert "Version 1 was scored again by this run's judge on this data" in report  # the judge changed with the data
    data_line = next(line for line in report.splitlines() if line.startswith("- data version"))
    assert data_line not in first["report"]  # a new raw dataset version
    assert second["remote"] > first["remote"]


def test_a_third_retraining_with_nothing_changed_reruns_nothing_and_leaves_the_registry_alone(second, third):
    assert third["registry"] == second["registry"]
    before, after = third["runs"]
    assert before == after
    assert third["lock_unchanged"]
    assert "Data and pipelines are up to date." in third["status"]
    assert "stages rerun: none (nothing changed)" in third["report"]
    assert "Running stage" not in third["result"].stdout


def test_a_tracking_server_that_is_down_fails_the_first_step_and_pushes_nothing(third, tracking_down):
    result = tracking_down["result"]
    assert result.returncode != 0
    assert "retrain failed at step 'tracking'" in result.stderr
    assert "cannot reach the MLflow tracking server http://127.0.0.1:9" in result.stderr
    assert tracking_down["remote_unchanged"]
    assert tracking_down["registry"] == third["registry"]


def test_a_failing_stage_fails_the_repro_step_pushes_nothing_and_keeps_the_champion(third, failing_stage):
    result = failing_stage["result"]
    assert result.returncode != 0
    assert "retrain failed at step 'repro'" in result.stderr
    assert failing_stage["remote_unchanged"]
    assert failing_stage["registry"] == third["registry"]
    assert "**Failed at step `repro`**" in failing_stage["report"]
