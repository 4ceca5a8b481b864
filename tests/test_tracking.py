"""The MLflow side of training: resuming into a run, step metrics, system metrics; real SQLite stores."""

import subprocess
import sys
import time

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from gan_pipeline.config.base import flatten_params
from gan_pipeline.gan.checkpoints import CheckpointRecord
from gan_pipeline.tracking import (
    StepMetricsLogger,
    git_state,
    logged_form,
    resumable_run,
    select_run,
    system_metrics_logged,
)
from tests.settings import training_params

PARAMS = {"training": {"epochs": 2, "betas": [0.5, 0.999], "speed": {"compile": "auto"}}, "evaluation": {"seed": 1}}


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """One SQLite store for the module (creating one takes seconds); each test makes its own runs."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("tracking-test")  # not whichever experiment an earlier test left active
    yield MlflowClient(uri)
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def _interrupted_run(params: dict) -> str:
    with mlflow.start_run() as run:
        mlflow.log_params(flatten_params(params))
    return run.info.run_id


def _trajectory(epochs: int = 2) -> dict:
    return training_params(epochs=epochs).trajectory(1, "cpu")


def _record(run_id: str, completed: bool = False) -> CheckpointRecord:
    return CheckpointRecord("x.safetensors", 1, 10, completed, _trajectory(), "data", run_id)


def test_params_are_flattened_as_kedro_mlflow_logs_them():
    assert flatten_params(PARAMS) == {
        "training.epochs": 2,
        "training.betas": [0.5, 0.999],
        "training.speed.compile": "auto",
        "evaluation.seed": 1,
    }


def test_an_unfinished_checkpoint_resumes_into_its_mlflow_run(tracking):
    run_id = _interrupted_run(PARAMS)
    logged = logged_form(PARAMS)
    assert resumable_run(_record(run_id), _trajectory(), logged).info.run_id == run_id
    assert select_run("unused", logged, interrupted=(_record(run_id), _trajectory())).info.run_id == run_id
    assert resumable_run(_record(run_id, completed=True), _trajectory(), logged) is None
    assert select_run("unused", logged) is None  # nothing to resume, no earlier model: a new run
    assert resumable_run(_record(run_id), _trajectory(epochs=3), logged) is None


def test_a_rerun_whose_parameters_mlflow_cannot_change_gets_a_new_run(tracking, caplog):
    run_id = _interrupted_run(PARAMS)
    changed = logged_form({**PARAMS, "evaluation": {"seed": 2}})
    assert resumable_run(_record(run_id), _trajectory(), changed) is None
    assert "['evaluation.seed'] differ" in caplog.text
    tracking.delete_run(run_id)
    assert resumable_run(_record(run_id), _trajectory(), logged_form(PARAMS)) is None


def test_the_step_logger_logs_each_step_once_across_a_resume(tracking):
    with mlflow.start_run() as run, StepMetricsLogger() as first_attempt:
        for step in (5, 10, 15):  # the checkpoint was at step 10; step 15 was logged before the kill
            first_attempt(step, {"d_loss": float(step), "step": step})
    with mlflow.start_run(run_id=run.info.run_id), StepMetricsLogger() as resumed:
        for step in (5, 10, 15, 20):  # history replayed from the checkpoint, then steps 15 and 20 recomputed
            resumed(step, {"d_loss": -float(step), "step": step})
    history = tracking.get_metric_history(run.info.run_id, "d_loss")
    assert [(m.step, m.value) for m in history] == [(5, 5.0), (10, 10.0), (15, 15.0), (20, -20.0)]


def test_a_step_metric_mlflow_refuses_in_the_background_fails_the_step_logger(tracking):
    with (
        mlflow.start_run(),
        pytest.raises(MlflowException, match="Names may only contain"),
        StepMetricsLogger() as log_step,
    ):
        log_step(10, {"d_loss?": 1.0})


def test_system_metrics_are_logged_while_training_runs(mlflow_store):
    with mlflow.start_run() as run, system_metrics_logged(0.5) as logging:
        time.sleep(2)
    assert logging
    metrics = MlflowClient().get_run(run.info.run_id).data.metrics
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(metrics)
    assert len(MlflowClient().get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")) >= 2


def test_no_system_metrics_without_a_run_or_with_a_zero_interval(mlflow_store):
    with system_metrics_logged(0.5) as logging:
        assert not logging
    with mlflow.start_run() as run, system_metrics_logged(0) as logging:
        time.sleep(1)
    assert not logging
    assert not any(key.startswith("system/") for key in MlflowClient().get_run(run.info.run_id).data.metrics)


def test_outside_git_the_commit_comes_from_the_image(tmp_path, monkeypatch):
    """An image holds no .git: the Dockerfile's GAN_PIPELINE_GIT_COMMIT names the commit it was built from."""
    monkeypatch.chdir(tmp_path)  # not a git work tree
    monkeypatch.delenv("GAN_PIPELINE_GIT_COMMIT", raising=False)
    assert git_state() == {}
    monkeypatch.setenv("GAN_PIPELINE_GIT_COMMIT", "0123abcd")
    assert git_state() == {"git_commit": "0123abcd"}
    assert git_state(prefix="evaluation_") == {"evaluation_git_commit": "0123abcd"}


# Each process imports MLflow, then waits for the same instant before its first use of the new store.
FIRST_USE_AT_ONCE = """
import sys, time
from gan_pipeline.tracking import create_local_store
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
create_local_store(sys.argv[1])
"""


def test_first_runs_at_once_on_a_new_sqlite_store_do_not_race_its_migration(tmp_path):
    """Without the lock, two of three processes failed in MLflow's migration (duplicate column, alembic)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    start_at = str(time.time() + 8)  # after every process has imported MLflow
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", FIRST_USE_AT_ONCE, uri, start_at], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=120)[0].decode() for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], "\n".join(outputs)[-3000:]
    assert MlflowClient(uri).get_experiment_by_name("Default") is not None
