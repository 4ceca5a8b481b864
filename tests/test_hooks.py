"""Hooks that make separate DVC stages add up to one MLflow run per trained model, on a real MLflow store."""

import mlflow
import pytest
from dvc_data.hashfile.hash import file_md5
from kedro.io import DataCatalog
from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from gan_pipeline.hooks import ProjectHooks, as_logged, configured_sections, training_run_evaluated
from gan_pipeline.io import JSONDataset
from gan_pipeline.pipeline_registry import register_pipelines, stage_pipelines, upstream_pipelines
from gan_pipeline.promotion import PromotionRefused
from gan_pipeline.tracking import logged_form, select_run
from gan_pipeline.versioning import dvc_file_hash, parameters_hidden_from_dvc
from tests.settings import TINY_EVALUATION, base_parameters, merged

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


def evaluation_params(confidence_threshold: float = 0.9) -> dict[str, str]:
    """What the evaluation pipeline logs, as configured."""
    configured = merged(
        base_parameters(), {"evaluation": {**TINY_EVALUATION, "confidence_threshold": confidence_threshold}}
    )
    return logged_form(configured_sections(register_pipelines()["evaluation"], configured))


def test_an_evaluation_logs_into_the_run_that_trained_its_model(training_run):
    run = select_run(EXPERIMENT, evaluation_params(), trained_in=training_run.info.run_id)
    assert run.info.run_id == training_run.info.run_id


def test_only_a_pipeline_that_evaluates_an_earlier_model_continues_the_run_recorded_beside_it(tmp_path):
    record = JSONDataset(str(tmp_path / "training_run.json"))
    catalog = DataCatalog({"training_run": record})
    pipelines = register_pipelines()
    assert training_run_evaluated(pipelines["evaluation"], catalog) is None  # no record yet
    record.save({"run_id": "abc"})
    assert training_run_evaluated(pipelines["evaluation"], catalog) == "abc"
    assert training_run_evaluated(pipelines["__default__"], catalog) is None  # trains its own


def test_the_params_an_evaluation_compares_are_its_own_section_as_configured():
    logged = evaluation_params()
    assert logged["evaluation.confidence_threshold"] == "0.9" and logged["evaluation.judge.epochs"] == "2"
    assert {key.split(".")[0] for key in logged} == {"evaluation"}


def test_changed_evaluation_parameters_go_into_a_child_of_the_training_run(training_run, tracking_store):
    """MLflow refuses to change a logged param, so a re-evaluation with new settings cannot share the run."""
    child = select_run(EXPERIMENT, evaluation_params(confidence_threshold=0.8), trained_in=training_run.info.run_id)
    assert child.info.run_id != training_run.info.run_id
    assert child.data.tags[MLFLOW_PARENT_RUN_ID] == training_run.info.run_id
    assert child.data.tags["training_run_id"] == training_run.info.run_id
    assert child.info.experiment_id == training_run.info.experiment_id


def test_a_training_run_missing_from_the_store_gives_a_new_run_that_names_it(tracking_store):
    """A clone that pulled the model with DVC but has its own MLflow store."""
    run = select_run(EXPERIMENT, evaluation_params(), trained_in="0123456789abcdef0123456789abcdef")
    assert run.data.tags["training_run_id"] == "0123456789abcdef0123456789abcdef"
    assert MLFLOW_PARENT_RUN_ID not in run.data.tags
    assert tracking_store.get_experiment(run.info.experiment_id).name == EXPERIMENT


def test_the_stages_upstream_of_a_pipeline_are_found_through_the_data_they_pass():
    pipelines = stage_pipelines()
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


def test_a_training_run_from_another_experiment_gives_a_new_run_in_this_one(tracking_store):
    """MLflow cannot resume a run outside the active experiment, e.g. after mlflow.yml renamed it."""
    elsewhere = tracking_store.create_experiment("renamed-since")
    old_run = tracking_store.create_run(elsewhere)
    run = select_run(EXPERIMENT, evaluation_params(), trained_in=old_run.info.run_id)
    assert run.data.tags["training_run_id"] == old_run.info.run_id
    assert tracking_store.get_experiment(run.info.experiment_id).name == EXPERIMENT


def test_a_refused_promotion_writes_a_refused_decision_over_the_earlier_one(tmp_path):
    decision = JSONDataset(str(tmp_path / "promotion_decision.json"))
    decision.save({"outcome": "promoted", "challenger_version": "3"})  # an earlier run's
    catalog = DataCatalog({"promotion_decision": decision})
    (node,) = register_pipelines()["promotion"].nodes
    registered = {"registered_model_name": "gan-generator-faces", "registered_model_version": 4}
    refusal = PromotionRefused("cannot compare version 4 with champion version 3: their 'dataset' differs")

    ProjectHooks().on_node_error(refusal, node, catalog, {"registered_model": registered})

    assert decision.load() == {
        "outcome": "refused",
        "reason": "cannot compare version 4 with champion version 3: their 'dataset' differs",
        "registered_model_name": "gan-generator-faces",
        "challenger_version": "4",
        "champion_version": None,
    }


def test_a_run_logs_the_source_settings_of_its_own_dataset_only():
    configured = {
        "data_ingestion": {
            "dataset": "mnist",
            "sources": {"digits": {"max_samples": None}, "mnist": {"splits": ["train"]}},
        },
        "training": {"epochs": 3},
    }
    logged = as_logged(configured)
    assert logged["data_ingestion"]["sources"] == {"mnist": {"splits": ["train"]}}
    assert logged["training"] == {"epochs": 3}
    assert set(configured["data_ingestion"]["sources"]) == {"digits", "mnist"}  # the configuration is left as it was


def test_run_names_say_the_dataset_network_and_length_or_the_dvc_experiment(monkeypatch):
    from gan_pipeline.tracking import run_name

    configured = {"data_ingestion": {"dataset": "stacked_mnist"}, "training": {"preset": "dcgan28", "epochs": 6}}
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    assert run_name(configured) == "stacked_mnist-dcgan28-6ep"
    assert run_name({**configured, "training": {"preset": "auto", "epochs": 6}}) == "stacked_mnist-6ep"
    monkeypatch.setenv("DVC_EXP_NAME", "wider-d")
    assert run_name(configured) == "wider-d (stacked_mnist-dcgan28-6ep)"
