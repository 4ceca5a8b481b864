"""Hooks that make separate DVC stages add up to one MLflow run per trained model, on a real MLflow store."""

import mlflow
import pytest
from dvc_data.hashfile.hash import file_md5
from kedro.io import DataCatalog, MemoryDataset
from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from gan_pipeline.hooks import project_pipelines, run_for_earlier_model, upstream_pipelines
from gan_pipeline.io import JSONDataset
from gan_pipeline.pipeline_registry import register_pipelines
from gan_pipeline.versioning import dvc_file_hash, parameters_hidden_from_dvc
from tests.conftest import TINY_EVALUATION

EXPERIMENT = "hooks-test"


@pytest.fixture(scope="module")
def tracking_store(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    MlflowClient().create_experiment(EXPERIMENT)
    yield MlflowClient()
    mlflow.set_tracking_uri(previous)


@pytest.fixture
def training_run(tracking_store):
    """A finished run that trained a model and logged the evaluation parameters when it was evaluated."""
    experiment = tracking_store.get_experiment_by_name(EXPERIMENT)
    run = tracking_store.create_run(experiment.experiment_id, run_name="training")
    tracking_store.log_param(run.info.run_id, "evaluation.confidence_threshold", "0.9")
    tracking_store.set_terminated(run.info.run_id)
    return run


def evaluation_catalog(tmp_path, run_id: str | None, confidence_threshold: float = 0.9) -> DataCatalog:
    record = JSONDataset(str(tmp_path / "training_run.json"))
    if run_id is not None:
        record.save({"run_id": run_id})
    params = {**TINY_EVALUATION, "confidence_threshold": confidence_threshold}
    return DataCatalog({"training_run": record, "params:evaluation": MemoryDataset(params)})


def test_an_evaluation_logs_into_the_run_that_trained_its_model(training_run, tmp_path):
    catalog = evaluation_catalog(tmp_path, training_run.info.run_id)
    run = run_for_earlier_model(register_pipelines()["evaluation"], catalog, EXPERIMENT)
    assert run.info.run_id == training_run.info.run_id


def test_a_pipeline_that_trains_its_own_model_starts_a_new_run(training_run, tmp_path):
    catalog = evaluation_catalog(tmp_path, training_run.info.run_id)
    assert run_for_earlier_model(register_pipelines()["__default__"], catalog, EXPERIMENT) is None


def test_without_a_recorded_training_run_the_evaluation_starts_a_new_run(tracking_store, tmp_path):
    catalog = evaluation_catalog(tmp_path, run_id=None)
    assert run_for_earlier_model(register_pipelines()["evaluation"], catalog, EXPERIMENT) is None


def test_changed_evaluation_parameters_go_into_a_child_of_the_training_run(training_run, tracking_store, tmp_path):
    """MLflow refuses to change a logged param, so a re-evaluation with new settings cannot share the run."""
    catalog = evaluation_catalog(tmp_path, training_run.info.run_id, confidence_threshold=0.8)
    child = run_for_earlier_model(register_pipelines()["evaluation"], catalog, EXPERIMENT)
    assert child.info.run_id != training_run.info.run_id
    assert child.data.tags[MLFLOW_PARENT_RUN_ID] == training_run.info.run_id
    assert child.data.tags["training_run_id"] == training_run.info.run_id
    assert child.info.experiment_id == training_run.info.experiment_id


def test_a_training_run_missing_from_the_store_gives_a_new_run_that_names_it(tracking_store, tmp_path):
    """A clone that pulled the model with DVC but has its own MLflow store."""
    catalog = evaluation_catalog(tmp_path, "0123456789abcdef0123456789abcdef")
    run = run_for_earlier_model(register_pipelines()["evaluation"], catalog, EXPERIMENT)
    assert run.data.tags["training_run_id"] == "0123456789abcdef0123456789abcdef"
    assert MLFLOW_PARENT_RUN_ID not in run.data.tags
    assert tracking_store.get_experiment(run.info.experiment_id).name == EXPERIMENT


def test_the_stages_upstream_of_a_pipeline_are_found_through_the_data_they_pass():
    pipelines = project_pipelines()
    assert set(pipelines) == set(register_pipelines()) - {"__default__"}
    assert upstream_pipelines(pipelines["data_ingestion"], pipelines) == []
    assert set(upstream_pipelines(pipelines["training"], pipelines)) == {"data_processing", "data_ingestion"}
    assert set(upstream_pipelines(pipelines["evaluation"], pipelines)) == {
        "data_processing",
        "data_ingestion",
        "training",
    }


def test_parameters_set_outside_conf_base_are_named():
    base = {"training": {"epochs": 200, "seed": 0, "architecture": {}}, "evaluation": {"judge": {"epochs": 30}}}
    effective = {
        "training": {"epochs": 5, "seed": 0, "architecture": {"latent_dim": 128}},
        "evaluation": {"judge": {"epochs": 30}},
    }
    assert parameters_hidden_from_dvc(effective, base) == ["training.architecture.latent_dim", "training.epochs"]
    assert parameters_hidden_from_dvc(base, base) == []


def test_the_data_version_is_the_hash_dvc_records(tmp_path):
    path = tmp_path / "raw.bin"
    path.write_bytes(b"line\r\nbytes \x00\xff" * 100_000)  # CRLF and binary: DVC 3 hashes the bytes as they are
    assert dvc_file_hash(path) == file_md5(str(path))


def test_a_training_run_from_another_experiment_gives_a_new_run_in_this_one(tracking_store, tmp_path):
    """MLflow cannot resume a run outside the active experiment, e.g. after mlflow.yml renamed it."""
    elsewhere = tracking_store.create_experiment("renamed-since")
    old_run = tracking_store.create_run(elsewhere)
    catalog = evaluation_catalog(tmp_path, old_run.info.run_id)
    run = run_for_earlier_model(register_pipelines()["evaluation"], catalog, EXPERIMENT)
    assert run.data.tags["training_run_id"] == old_run.info.run_id
    assert tracking_store.get_experiment(run.info.experiment_id).name == EXPERIMENT
