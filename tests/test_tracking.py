"""The nodes' bridge to MLflow: system metrics around training, no-ops without a run."""

import time

import mlflow
from mlflow import MlflowClient

from gan_pipeline.tracking import system_metrics_logged


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
