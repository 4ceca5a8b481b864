"""The whole project as a user runs it: `kedro run` in a fresh copy, then the MLflow store it left."""

from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from tests.conftest import copy_project, run_kedro

TINY = (
    "training.epochs=2,training.sample_every_epochs=1,training.log_every_steps=5,"
    "training.progress_bar=false,evaluation.judge.epochs=2"
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return copy_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def finished_run(project):
    result = run_kedro(project, "run", "--params", TINY)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("gan-pipeline")
    (run,) = client.search_runs([experiment.experiment_id])
    return result, client, run


def test_the_run_ends_by_saying_where_the_results_are(finished_run, project):
    result, _, _ = finished_run
    assert "Results:" in result.stdout
    assert str(project / "data" / "08_reporting" / "metrics.json") in result.stdout
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in result.stdout
    for name in ("metrics.json", "loss_history.csv", "loss_curves.png", "training_progress.png", "data_profile.csv"):
        assert (project / "data" / "08_reporting" / name).stat().st_size > 0


def test_the_mlflow_run_holds_flat_params_tags_and_metrics(finished_run):
    _, client, run = finished_run
    assert run.data.params["training.epochs"] == "2"
    assert run.data.params["training.loss"] == "non_saturating"
    assert run.data.params["data_ingestion.dataset"] == "digits"
    assert run.data.tags["dataset"] == "digits"
    assert len(run.data.tags["git_commit"]) == 40
    for key in (
        "frechet_distance",
        "frechet_distance_real_floor",
        "classes_covered",
        "class_kl_divergence",
        "confident_share",
        "judge_val_accuracy",
    ):
        assert key in run.data.metrics
    d_loss = client.get_metric_history(run.info.run_id, "d_loss")
    assert len(d_loss) > 1
    assert [m.step for m in d_loss] == sorted(m.step for m in d_loss)


def test_the_mlflow_run_holds_figures_and_tables(finished_run):
    _, client, run = finished_run

    def listed(path):
        return {Path(a.path).name for a in client.list_artifacts(run.info.run_id, path)}

    assert {"loss_history.csv", "loss_curves.png", "training_progress.png"} <= listed("training")
    assert {"metrics.json", "evaluation_samples.png"} <= listed("evaluation")
    assert {"data_profile.csv", "dataset_card.csv"} <= listed("data")


def test_the_registered_generator_loads_and_makes_images(finished_run, project):
    _, client, run = finished_run
    (version,) = client.search_model_versions("name='gan-generator'")
    assert version.run_id == run.info.run_id
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    generator = mlflow.pytorch.load_model(f"models:/gan-generator/{version.version}")
    images = generator(torch.randn(10, 64))
    assert images.shape == (10, 1, 8, 8)
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0


def test_a_single_pipeline_runs_once_its_inputs_exist(finished_run, project):
    result = run_kedro(project, "run", "--pipeline", "data_processing")
    assert result.returncode == 0, result.stderr[-3000:]


def test_invalid_parameters_stop_the_run_before_any_work(finished_run, project):
    before = {p: p.stat().st_mtime_ns for p in (project / "data").rglob("*") if p.is_file()}
    result = run_kedro(project, "run", "--params", "training.epochs=-1,training.preset=nope")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "training.epochs" in output and "training.preset: unknown preset 'nope'" in output
    after = {p: p.stat().st_mtime_ns for p in (project / "data").rglob("*") if p.is_file()}
    assert after == before
