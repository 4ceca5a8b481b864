"""Training as users run it on GPU nodes, here on CPU: ``kedro run`` killed with SIGKILL and rerun,
and ``torchrun`` starting two ``kedro run`` processes, each in its own copy of the project."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from gan_pipeline.io import SplitDataset
from gan_pipeline.pipelines.data_processing.nodes import split_dataset
from gan_pipeline.splits import Split
from tests.kedro_project import VENV_BIN, copy_project, project_env
from tests.kedro_project import kedro as run_kedro
from tests.settings import processing_params

pytestmark = pytest.mark.slow

TINY = (
    "training.device=cpu,training.progress_bar=false,training.standing_statistics_batches=10,"
    "training.log_every_steps=5,"
    "training.sample_every_epochs=5,training.checkpoint.every_epochs=1"
)
TRAIN_SIZE = 1437  # digits' training split
RECORD = Path("data/06_models/checkpoints/last.json")


def project_files(root: Path) -> list[Path]:
    """Every file and folder under ``root`` but setuptools' ``*.egg-info``: what a process could have written."""
    return sorted(
        path.relative_to(root)
        for path in root.rglob("*")
        if not any(part.endswith(".egg-info") for part in path.relative_to(root).parts)
    )


def prepared_project(root: Path, digits_raw: Split) -> Path:
    """A project copy whose processed splits exist, so the training pipeline can run alone."""
    copy_project(root)
    splits = split_dataset(digits_raw, processing_params())
    for name, split in splits.items():
        SplitDataset(str(root / "data" / "05_model_input" / f"{name}.safetensors")).save(split)
    return root


def logged_steps(steps_per_epoch: int, epochs: int, every: int = 5) -> list[int]:
    total = steps_per_epoch * epochs
    return sorted({*range(every, total + 1, every), total})


def training_runs(project: Path) -> tuple[MlflowClient, list]:
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("gan-pipeline")
    return client, [run for run in client.search_runs([experiment.experiment_id]) if "d_loss" in run.data.metrics]


def wait_for_a_checkpoint(project: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not (project / RECORD).is_file():
        assert process.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)


def test_a_killed_training_run_resumes_from_its_checkpoint_into_the_same_mlflow_run(tmp_path, digits_raw):
    project = prepared_project(tmp_path / "project", digits_raw)
    params = TINY + ",training.epochs=6"  # the kill comes within 0.1 s of the first epoch's checkpoint
    with (tmp_path / "killed.log").open("w") as log:
        process = subprocess.Popen(
            [str(VENV_BIN / "kedro"), "run", "--pipelines", "training", "--params", params],
            cwd=project,
            env=project_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_a_checkpoint(project, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    killed_at = json.loads((project / RECORD).read_text())
    assert not killed_at["completed"], "the run finished before it was killed; raise training.epochs"
    assert not (project / "data" / "06_models" / "generator.safetensors").exists()

    result = run_kedro(project, "run", "--pipelines", "training", "--params", params)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    client, (run,) = training_runs(project)  # one MLflow run: the killed one, continued
    assert run.info.status == "FINISHED"
    assert int(run.data.tags["resumed_from_step"]) == killed_at["step"] > 0
    expected = logged_steps(TRAIN_SIZE // 32, 6)
    assert [metric.step for metric in client.get_metric_history(run.info.run_id, "d_loss")] == expected
    history = pd.read_csv(project / "data" / "08_reporting" / "loss_history.csv")
    assert history["step"].tolist() == expected  # no duplicated, no missing step
    assert json.loads((project / RECORD).read_text())["completed"] is True


# Exec the command with Ctrl-C (SIGINT) enabled, as in a terminal: a shell's background job (CI's `... &`)
# starts its children with SIGINT ignored, and exec keeps it so.
WITH_CTRL_C = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
)


def start_training(project: Path, params: str, log: Path) -> subprocess.Popen:
    with log.open("w") as output:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                WITH_CTRL_C,
                str(VENV_BIN / "kedro"),
                "run",
                "--pipelines",
                "training",
                "--params",
                params,
            ],
            cwd=project,
            env=project_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_run_stopped_by_sigterm_or_ctrl_c_ends_killed_with_a_resumable_checkpoint(tmp_path, digits_raw, stop):
    project = prepared_project(tmp_path / "project", digits_raw)
    process = start_training(project, TINY + ",training.epochs=40", tmp_path / "stopped.log")
    wait_for_a_checkpoint(project, process)
    process.send_signal(stop)
    assert process.wait(timeout=120) == 130
    output = (tmp_path / "stopped.log").read_text()
    assert "Interrupted" in output and "ends as KILLED" in output
    _, (run,) = training_runs(project)
    assert run.info.status == "KILLED"  # not FINISHED, as MLflow's own exit handler would have it
    assert json.loads((project / RECORD).read_text())["completed"] is False  # the next run resumes from it


def test_a_run_left_running_by_a_killed_process_is_ended_as_killed_by_the_next_run(tmp_path, digits_raw):
    project = prepared_project(tmp_path / "project", digits_raw)
    process = start_training(project, TINY + ",training.epochs=40", tmp_path / "killed.log")
    wait_for_a_checkpoint(project, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    _, (stale,) = training_runs(project)
    assert stale.info.status == "RUNNING"
    # Another training, not a resume of the killed one, opens its own run.
    params = TINY + ",training.epochs=1,training.resume=never"
    result = run_kedro(project, "run", "--pipelines", "training", "--params", params)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    _, runs = training_runs(project)
    statuses = {run.info.run_id: run.info.status for run in runs}
    assert statuses.pop(stale.info.run_id) == "KILLED"
    assert list(statuses.values()) == ["FINISHED"]


def test_a_run_killed_after_training_continues_from_the_trained_generator(tmp_path, digits_raw):
    """kill -9 once training is done (in evaluation): the rerun ends the stale run as KILLED, then continues it from
    the finished checkpoint, evaluating, registering and promoting the same generator without training a step."""
    project = prepared_project(tmp_path / "project", digits_raw)
    params = TINY + ",training.epochs=3,evaluation.judge.epochs=2"
    log = tmp_path / "killed.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(VENV_BIN / "kedro"), "run", "--params", params],
            cwd=project,
            env=project_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        while "Completed node: training.train_model" not in log.read_text():
            assert process.poll() is None, log.read_text()[-3000:]
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    assert json.loads((project / RECORD).read_text())["completed"] is True
    generator = project / "data" / "06_models" / "generator.safetensors"
    trained = generator.read_bytes()
    assert not (project / "data" / "08_reporting" / "metrics.json").exists()  # killed before the evaluation ended

    result = run_kedro(project, "run", "--params", params)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    client, (run,) = training_runs(project)  # the killed run, continued: no second training run
    assert run.info.status == "FINISHED"
    assert int(run.data.tags["resumed_from_step"]) == 3 * (TRAIN_SIZE // 32)  # every step was done before
    assert generator.read_bytes() == trained  # the same generator, not a retrained one
    assert "frechet_distance" in run.data.metrics
    (version,) = client.search_model_versions(f"run_id = '{run.info.run_id}'")
    assert version.tags["promotion.decision"] == "first_champion"


def test_torchrun_trains_two_processes_and_only_the_main_one_writes_or_logs(tmp_path, digits_raw):
    """Each process runs in its own project copy, as on two machines without shared storage."""
    for rank in (0, 1):
        prepared_project(tmp_path / f"node{rank}", digits_raw)
    before = project_files(tmp_path / "node1")
    params = TINY + ",training.epochs=2"
    in_own_copy = (
        f'cd "{tmp_path}/node$RANK" && exec "{VENV_BIN / "kedro"}" run --pipelines training --params "{params}"'
    )
    result = subprocess.run(
        [str(VENV_BIN / "torchrun"), "--standalone", "--nproc-per-node", "2", "--no-python", "bash", "-c", in_own_copy],
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    main = tmp_path / "node0"
    for output in ("06_models/generator.safetensors", "08_reporting/loss_history.csv", "06_models/checkpoints"):
        assert (main / "data" / output).exists()
    client, (run,) = training_runs(main)
    assert run.data.tags["processes"] == "2"
    per_process_steps = (TRAIN_SIZE // 2) // 32
    expected = logged_steps(per_process_steps, 2)
    assert [metric.step for metric in client.get_metric_history(run.info.run_id, "d_loss")] == expected
    after = project_files(tmp_path / "node1")
    assert after == before  # the other process wrote no file and created no MLflow store
