"""Your own images, as a new user brings them: a folder of colour photo crops, `kedro run` with the folder's
path, side and channels alone (no preset, no architecture), then the registered model loaded and served."""

import json
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image
from sklearn.datasets import load_sample_images

from gan_pipeline.io import read_metadata
from tests.kedro_project import VENV_BIN, copy_project, kedro, project_env
from tests.mlflow_server import served_predictions

pytestmark = pytest.mark.slow

# Quick, not good: every key here is a speed knob, none picks a network.
TINY = {
    "training.epochs": 1,
    "training.batch_size": 16,
    "training.generated_batch_size": 16,
    "training.standing_statistics_batches": 2,
    "training.sample_every_epochs": 1,
    "training.progress_bar": "false",
    "evaluation.judge.epochs": 1,
    "evaluation.progress_bar": "false",
}


def save_crops(folder: Path, side: int, count: int, seed: int = 0, photos: tuple[int, ...] = (0, 1)) -> Path:
    """``count`` random ``side`` x ``side`` crops of scikit-learn's sample photos (both by default), as PNGs."""
    folder.mkdir(parents=True)
    images, rng = load_sample_images().images, np.random.default_rng(seed)
    for index in range(count):
        photo = images[photos[index % len(photos)]]
        top, left = rng.integers(0, photo.shape[0] - side), rng.integers(0, photo.shape[1] - side)
        Image.fromarray(photo[top : top + side, left : left + side]).save(folder / f"crop{index:03d}.png")
    return folder


def run_on(project: Path, folder: Path, side: int, **more: object) -> dict:
    params = {
        "data_ingestion.dataset": "image_folder",
        "data_ingestion.sources.image_folder.path": str(folder),
        "data_ingestion.sources.image_folder.image_size": side,
        "data_ingestion.sources.image_folder.channels": 3,
        **TINY,
        **more,
    }
    result = kedro(project, "run", "--params", ",".join(f"{key}={value}" for key, value in params.items()))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((project / "data" / "08_reporting" / "metrics.json").read_text())


@pytest.mark.parametrize("side", [32, 64, 128])
def test_a_flat_folder_of_colour_photos_trains_evaluates_without_labels_registers_and_generates(tmp_path, side):
    folder = save_crops(tmp_path / f"photos{side}", side, count=48)
    project = copy_project(tmp_path / "project")
    metrics = run_on(project, folder, side)

    assert metrics["frechet_distance"] > 0 and metrics["frechet_distance_real_floor"] >= 0
    assert 0 <= metrics["precision"] <= 1 and "judge_val_accuracy" in metrics
    assert not {"classes_covered", "class_kl_divergence", "judge_inception_score"} & set(metrics)  # no classes
    assert read_metadata(project / "data" / "06_models" / "judge.safetensors")["task"] == "rotation"
    # Three steps of training: whether that beats the untrained network is the floor's to say, by its rule.
    decision = json.loads((project / "data" / "08_reporting" / "promotion_decision.json").read_text())
    beats_floor = metrics["frechet_distance"] < 0.98 * metrics["frechet_distance_untrained"]
    assert decision["outcome"] == ("first_champion" if beats_floor else "kept")
    assert decision["registered_model_name"] == f"gan-generator-photos{side}"

    tracking_uri = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("gan-pipeline").experiment_id])
    assert run.data.tags["architecture"] == f"dcgan{side}" and run.data.tags["dataset"] == f"photos{side}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        model = mlflow.pyfunc.load_model(f"models:/gan-generator-photos{side}@challenger")
        images = model.predict({"num_samples": 3, "seed": 1})
    finally:
        mlflow.set_tracking_uri(previous)
    assert images.shape == (3, 3, side, side) and images.min() >= -1 and images.max() <= 1
    if side == 32:  # and as a colour PNG grid by the console
        grid = tmp_path / "samples.png"
        model = f"models:/gan-generator-photos{side}@challenger"
        command = [str(VENV_BIN / "gan-pipeline"), "generate", "--model", model, "--num", "4", "--out", str(grid)]
        command += ["--tracking-uri", tracking_uri]
        subprocess.run(command, cwd=project, env=project_env(), check=True, capture_output=True)
        with Image.open(grid) as picture:
            assert picture.mode == "RGB" and picture.size[0] > 2 * side
    if side == 64:  # served over HTTP as well, from the same registry
        body = {"dataframe_records": [{"num_samples": 3, "seed": 1}]}
        served = served_predictions(f"models:/gan-generator-photos{side}@challenger", tracking_uri, body, tmp_path)
        assert np.allclose(served, images, atol=1e-5)


def test_a_folder_with_class_sub_folders_keeps_the_class_judge_and_its_metrics(tmp_path):
    folder = tmp_path / "two-photos"
    for label in (0, 1):  # one class per photo: crops of the temple, crops of the flower
        save_crops(folder / f"photo{label}", 32, count=24, seed=label, photos=(label,))
    project = copy_project(tmp_path / "project")
    metrics = run_on(project, folder, 32)

    assert {"classes_covered", "class_kl_divergence", "judge_inception_score", "confident_share"} <= set(metrics)
    assert metrics["num_classes"] == 2
    assert read_metadata(project / "data" / "06_models" / "judge.safetensors")["task"] == "classes"


def test_inception_fid_and_kid_join_the_metrics_with_the_weights_file_named(tmp_path, inception_weights_file):
    folder = save_crops(tmp_path / "photos", 16, count=40)
    project = copy_project(tmp_path / "project")
    weights = {"evaluation.inception": "true", "evaluation.inception_weights": str(inception_weights_file)}
    metrics = run_on(project, folder, 16, **weights)

    assert metrics["inception_fid"] > 0 and metrics["inception_kid_std"] >= 0 and "frechet_distance" in metrics
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("gan-pipeline").experiment_id])
    assert run.data.tags["inception_weights"] == f"not the reference: {inception_weights_file}"
    assert {"inception_fid", "inception_kid", "inception_kid_std"} <= set(run.data.metrics)
