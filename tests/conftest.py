"""Shared fixtures: a tiny real dataset and tiny parameters, so tests run in seconds."""

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from kedro.framework.project import configure_project

from gan_pipeline.datasets import load_dataset
from gan_pipeline.gan.inception import InceptionFeatures
from gan_pipeline.splits import Split
from tests.mlflow_server import running_mlflow_server
from tests.settings import split_of

configure_project("gan_pipeline")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Each of `make test`'s workers has a core: the runs it starts (kedro, dvc, torchrun) take one thread each,
    # as the tests themselves do, instead of every process spinning a thread per core.
    os.environ["OMP_NUM_THREADS"] = "1"


# The modules that take minutes, heaviest first: `make test`'s workers take whole modules in collection order,
# so starting with these leaves no long one running alone at the end (it was 7 of 23 minutes).
HEAVIEST_FIRST = (
    "test_training_runs",
    "test_promotion_pipeline",
    "test_dvc_workflow",
    "test_team_stack",
    "test_airflow_dag",
    "test_retrain",
    "test_kedro_run_datasets",
    "test_mlflow_ui",
    "test_image_folders",
    "test_kedro_run",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(HEAVIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: each module keeps its order


@pytest.fixture(autouse=True)
def _single_thread_torch():
    """Keep CPU tests deterministic and polite on 2-core CI machines."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits_raw() -> Split:
    raw = load_dataset("digits", {}, "data/01_raw")
    return split_of(raw.samples, raw.labels, "digits", **raw.card)


def scaled(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float() / 127.5 - 1


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 with its own SQLite store and artifact folder, shared by the session."""
    root = tmp_path_factory.mktemp("mlflow_server")
    with running_mlflow_server(root) as uri:
        yield uri


@pytest.fixture(scope="session")
def registered_generator(tmp_path_factory) -> tuple[str, str, str]:
    """An untrained 8x8 generator logged and registered as the challenger in a SQLite store: (uri, name, version)."""
    import mlflow

    from gan_pipeline.gan.networks import build_networks
    from gan_pipeline.gan.presets import PRESETS
    from gan_pipeline.gan.serialization import architecture_metadata, module_to_tensors
    from gan_pipeline.registry import log_generator

    root = tmp_path_factory.mktemp("registry")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    torch.manual_seed(0)
    generator, _ = build_networks(PRESETS["digits_dcgan"])
    tensors = module_to_tensors(generator.eval(), architecture=architecture_metadata(generator.arch))
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        experiment_id = mlflow.create_experiment("gan-pipeline", artifact_location=(root / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment_id):
            logged = log_generator(tensors, "test-generator", {"dataset": "digits"})
    finally:
        mlflow.set_tracking_uri(previous)
    return tracking_uri, logged["registered_model_name"], str(logged["registered_model_version"])


@pytest.fixture
def mlflow_store(tmp_path) -> Iterator[str]:
    """This test's own SQLite tracking store (artifacts beside it); the previous tracking URI comes back after."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("test", artifact_location=(tmp_path / "art").as_uri()))
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(previous)
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)  # set_experiment exports it: later stores lack that experiment


@pytest.fixture(scope="session")
def inception_weights_file(tmp_path_factory) -> Path:
    """Inception-v3's state dict with random values (the reference file is never downloaded in tests), BatchNorm
    statistics measured on random images so that every layer's output stays varied: with default statistics the
    features of any two images agree."""
    torch.manual_seed(0)
    network = InceptionFeatures().train()
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a plain average over the calibration pass
    with torch.no_grad():
        network(torch.rand(8, 3, 16, 16) * 2 - 1)
    path = tmp_path_factory.mktemp("inception") / "inception.pth"
    torch.save(network.state_dict(), path)
    return path
