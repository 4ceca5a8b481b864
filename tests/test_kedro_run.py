"""The whole project as a user runs it: `kedro run` in a fresh copy, then the MLflow store it left."""

import hashlib
import json
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from tests.kedro_project import KEDRO, copy_project, kedro, project_env

TINY = (
    "training.epochs=2,training.sample_every_epochs=1,training.log_every_steps=5,"
    "training.progress_bar=false,training.standing_statistics_batches=10,evaluation.judge.epochs=2"
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return copy_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def finished_run(project):
    result = kedro(project, "run", "--params", TINY)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("gan-pipeline")
    (run,) = client.search_runs([experiment.experiment_id])
    return result, client, run


def test_the_run_ends_by_saying_where_the_results_are(finished_run, project):
    result, _, run = finished_run
    assert "Results:" in result.stdout
    assert str(project / "data" / "08_reporting" / "metrics.json") in result.stdout
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in result.stdout
    run_page = f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    assert f"{run_page}?workflowType=machine_learning" in result.stdout
    assert f"MLflow run   digits-2ep ({run.info.run_id}" in result.stdout
    for name in (
        "metrics.json",
        "loss_history.csv",
        "loss_curves.png",
        "training_progress.png",
        "data_profile.csv",
        "class_histogram.png",
        "latent_interpolation.png",
        "nearest_neighbours.png",
        "promotion_decision.json",
    ):
        assert (project / "data" / "08_reporting" / name).stat().st_size > 0


def test_a_clean_run_prints_no_warning(finished_run):
    """Nothing a user cannot act on: no deprecation, no MLflow type-hint advice (kedro-mlflow's model class)."""
    result, _, _ = finished_run
    output = result.stdout + result.stderr
    assert "warn" not in output.lower() and "deprecat" not in output.lower(), output[-3000:]


def test_an_unreachable_tracking_server_stops_the_run_in_seconds_with_one_message(finished_run, project):
    import socket
    import time

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    before = {path: path.stat().st_mtime_ns for path in (project / "data").rglob("*") if path.is_file()}
    started = time.monotonic()
    result = kedro(project, "run", "--pipelines", "training", tracking_uri=dead)
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 1 and elapsed < 30, (elapsed, output[-2000:])
    assert f"the MLflow tracking server {dead} does not answer" in output
    assert f"curl {dead}/health" in output and "unset MLFLOW_TRACKING_URI" in output
    assert "Traceback" not in output
    assert before == {path: path.stat().st_mtime_ns for path in (project / "data").rglob("*") if path.is_file()}


def test_a_failed_reevaluation_leaves_the_finished_run_as_it_was(finished_run, project):
    _, client, run = finished_run
    from gan_pipeline.gan.files import TensorFile
    from gan_pipeline.io import read_tensors, write_tensors

    generator = project / "data" / "06_models" / "generator.safetensors"
    weights = generator.read_bytes()
    # A valid file with the generator's header but other weights: it fails inside the evaluation, in the run.
    header = read_tensors(generator).metadata
    write_tensors(TensorFile({"other": np.zeros(3, dtype=np.float32)}, header), generator)
    try:  # the training run's own parameters: the evaluation continues that run, not a child of it
        result = kedro(project, "run", "--pipelines", "evaluation", "--params", TINY)
    finally:
        generator.write_bytes(weights)
    assert result.returncode == 1 and "does not hold the generator" in result.stderr
    after = client.get_run(run.info.run_id)
    assert (after.info.status, after.info.end_time) == ("FINISHED", run.info.end_time)
    assert "does not hold the generator" in after.data.tags["failed_rerun"]


def test_a_second_run_in_the_same_folder_is_refused_naming_the_first_until_it_dies(finished_run, project):
    import signal
    import sys
    import time

    holder = subprocess.Popen(  # a run holding the folder's lock, as a training would
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from gan_pipeline.project_lock import "
            "RunLock; lock = RunLock(Path(sys.argv[1])); lock.acquire(); print('held', flush=True); time.sleep(600)",
            str(project),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        runs_before = len(finished_run[1].search_runs([finished_run[2].info.experiment_id]))
        refused = kedro(project, "run", "--pipelines", "data_ingestion")
        assert refused.returncode == 1
        assert f"another run is using the project folder {project}: pid {holder.pid}" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert len(finished_run[1].search_runs([finished_run[2].info.experiment_id])) == runs_before
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: the kernel drops the lock, the file stays
        holder.wait()
    time.sleep(0.1)
    assert (project / ".gan-pipeline-run.lock").exists()
    assert kedro(project, "run", "--pipelines", "data_ingestion").returncode == 0


def test_the_mlflow_run_holds_flat_params_tags_and_metrics(finished_run):
    _, client, run = finished_run
    assert run.data.params["training.epochs"] == "2"
    assert run.data.params["training.system_metrics_interval_s"] == "10"  # as configured, not as parsed (10.0)
    assert not {"training", "evaluation", "data_ingestion"} & set(run.data.params)  # sections key by key only
    assert run.data.params["training.loss"] == "non_saturating"
    assert run.data.params["data_ingestion.dataset"] == "digits"
    sources = {key.split(".")[2] for key in run.data.params if key.startswith("data_ingestion.sources.")}
    assert sources == {"digits"}  # the settings of the dataset it ingests, not of every dataset
    assert run.data.tags["dataset"] == "digits"
    assert len(run.data.tags["git_commit"]) == 40
    for key in (
        "frechet_distance",
        "frechet_distance_real_floor",
        "classes_covered",
        "class_kl_divergence",
        "confident_share",
        "judge_val_accuracy",
        "precision",
        "recall",
        "density",
        "coverage",
        "judge_inception_score",
        "nearest_train_distance_ratio",
    ):
        assert key in run.data.metrics
    d_loss = client.get_metric_history(run.info.run_id, "d_loss")
    assert len(d_loss) > 1
    assert [m.step for m in d_loss] == sorted(m.step for m in d_loss)


def test_a_two_epoch_run_ships_trained_weights_and_is_champion_only_past_the_untrained_floor(finished_run):
    """The EMA warms up (a plain 0.999 keeps 92% of the random start after 2 epochs: precision 0.23, FD 7.7 against
    6.2 with the warm-up), and the first champion had to beat its untrained generator on the same judge."""
    _, client, run = finished_run
    metrics = run.data.metrics
    assert metrics["frechet_distance"] < 0.75 * metrics["frechet_distance_untrained"]
    assert metrics["precision"] > 0.4
    (version,) = client.search_model_versions(f"run_id = '{run.info.run_id}'")
    assert version.tags["promotion.decision"] == "first_champion"
    required = float(version.tags["promotion.required_frechet_distance"])
    assert required == pytest.approx(0.98 * metrics["frechet_distance_untrained"], rel=1e-5)


def test_the_mlflow_run_holds_figures_and_tables(finished_run):
    _, client, run = finished_run

    def listed(path):
        return {Path(a.path).name for a in client.list_artifacts(run.info.run_id, path)}

    # Figures at the root: the MLflow UI's compare view shows only top-level artifacts side by side.
    assert {
        "loss_curves.png",
        "training_progress.png",
        "evaluation_samples.png",
        "class_histogram.png",
        "latent_interpolation.png",
        "nearest_neighbours.png",
    } <= listed(None)
    assert {"loss_history.csv"} <= listed("training")
    assert {"metrics.json"} <= listed("evaluation")
    assert {"promotion_decision.json"} <= listed("promotion")
    assert {"data_profile.csv", "dataset_card.csv"} <= listed("data")


def test_the_registered_generator_is_the_champion_and_loads_as_pyfunc_and_torch(finished_run, project):
    _, client, run = finished_run
    (version,) = client.search_model_versions("name='gan-generator-digits'")
    assert version.run_id == run.info.run_id
    assert client.get_registered_model("gan-generator-digits").aliases == {
        "champion": version.version,
        "challenger": version.version,
    }
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    try:
        model = mlflow.pyfunc.load_model("models:/gan-generator-digits@champion")
        exported = mlflow.pytorch.load_model("models:/gan-generator-digits@champion")  # torch.export'ed, no pickle
    finally:
        mlflow.set_tracking_uri(previous)
    served = model.predict({"num_samples": 10, "seed": 0})
    assert served.shape == (10, 1, 8, 8) and served.dtype == np.float32
    latent = torch.randn(10, 64)
    images = exported(latent)
    assert images.shape == (10, 1, 8, 8)
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0
    with torch.no_grad():
        assert torch.allclose(images, model.unwrap_python_model().generator(latent), atol=1e-5)


def test_a_single_pipeline_runs_once_its_inputs_exist(finished_run, project):
    result = kedro(project, "run", "--pipelines", "data_processing")
    assert result.returncode == 0, result.stderr[-3000:]


def test_invalid_parameters_stop_the_run_before_any_work(finished_run, project):
    before = {p: p.stat().st_mtime_ns for p in (project / "data").rglob("*") if p.is_file()}
    result = kedro(project, "run", "--params", "training.epochs=-1,training.preset=nope")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "training.epochs" in output and "training.preset: unknown preset 'nope'" in output
    after = {p: p.stat().st_mtime_ns for p in (project / "data").rglob("*") if p.is_file()}
    assert after == before


def test_inception_weights_that_cannot_be_had_stop_the_run_before_any_work(finished_run, project, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in (project / "data").rglob("*") if p.is_file()}
    missing = tmp_path / "nowhere" / "inception.pth"
    result = kedro(project, "run", "--params", f"evaluation.inception=true,evaluation.inception_weights={missing}")
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output
    assert f"evaluation.inception_weights is {missing}, which does not exist" in output
    assert "Fix: download https://github.com/toshas/torch-fidelity/releases/download/" in output
    after = {p: p.stat().st_mtime_ns for p in (project / "data").rglob("*") if p.is_file()}
    assert after == before


def test_the_run_names_its_data_version_and_is_recorded_beside_the_model(finished_run, project):
    _, _, run = finished_run
    raw = project / "data" / "01_raw" / "raw_dataset.safetensors"
    assert run.data.tags["data_version"] == hashlib.md5(raw.read_bytes()).hexdigest()  # DVC's hash of the file
    assert run.data.tags["data_version_file"] == "data/01_raw/raw_dataset.safetensors"
    record = json.loads((project / "data" / "06_models" / "training_run.json").read_text())
    assert record["run_id"] == run.info.run_id


def test_an_invalid_parameter_stops_the_run_with_one_message_no_traceback_and_no_output(tmp_path):
    project = copy_project(tmp_path / "project")
    result = kedro(project, "run", "--params", "training.preset=nonexistent")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "training.preset: unknown preset 'nonexistent'; allowed: ['auto', 'article_dcgan'" in output
    assert "Traceback" not in output
    assert not [path for path in (project / "data").rglob("*") if path.is_file()]
    assert not (project / "mlflow.db").exists()  # validation comes before MLflow is even set up

    traced = subprocess.run(
        [KEDRO, "run", "--params", "training.preset=nonexistent"],
        cwd=project,
        env={**project_env(), "GAN_PIPELINE_TRACEBACK": "1", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert traced.returncode == 1 and "Traceback" in traced.stdout + traced.stderr
