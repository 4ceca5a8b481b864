"""Pipelines run through Kedro's runner on an in-memory catalog, as Kedro's starters test them."""

import numpy as np
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from mlflow import MlflowClient

from gan_pipeline.gan.networks import build_generator
from gan_pipeline.gan.presets import PRESETS
from gan_pipeline.gan.training import sample_images, standing_statistics
from gan_pipeline.io import JSONDataset, TableDataset, TensorsDataset
from gan_pipeline.pipeline_registry import register_pipelines
from gan_pipeline.pipelines.evaluation import nodes as evaluation_nodes
from gan_pipeline.pipelines.promotion.nodes import promote_generator
from tests.settings import evaluation_params, processing_params, promotion_params, split_of, training_params
from tests.test_registry import register


def _catalog(**datasets) -> DataCatalog:
    return DataCatalog({name: MemoryDataset(value) for name, value in datasets.items()})


def test_every_stage_is_registered_and_the_default_runs_them_in_order():
    pipelines = register_pipelines()
    assert {"data_ingestion", "data_processing", "training", "evaluation", "promotion", "__default__"} <= set(pipelines)
    names = [node.name for node in pipelines["__default__"].nodes]
    order = [
        "data_ingestion.ingest_dataset",
        "data_processing.split_dataset",
        "training.train_model",
        "evaluation.evaluate_generator",
        "evaluation.register_generator",
        "promotion.promote_generator",
    ]
    assert sorted(order, key=names.index) == order


def test_only_training_nodes_carry_the_gpu_tag():
    gpu_nodes = {node.name for node in register_pipelines()["__default__"].only_nodes_with_tags("gpu").nodes}
    assert gpu_nodes == {"training.train_model"}


def test_processing_training_and_evaluation_run_end_to_end_on_a_runner(digits_raw, tmp_path):
    pipelines = register_pipelines()
    pipeline = pipelines["data_processing"] + pipelines["training"] + pipelines["evaluation"]
    catalog = _catalog(
        raw_dataset=digits_raw,
        **{
            "params:data_processing": processing_params(),
            "params:training": training_params(),
            "params:evaluation": evaluation_params(),
        },
    )
    catalog["previous_judge"] = TensorsDataset(str(tmp_path / "judge.safetensors"), missing_ok=True)
    # Intermediate memory datasets are released once consumed: keep the ones we inspect on disk.
    catalog["generator"] = TensorsDataset(str(tmp_path / "generator.safetensors"))
    catalog["loss_history"] = TableDataset(str(tmp_path / "loss_history.csv"))
    catalog["metrics"] = JSONDataset(str(tmp_path / "metrics.json"))
    SequentialRunner().run(pipeline, catalog)

    generator = catalog.load("generator")
    assert "project.0.weight" in generator.arrays and "architecture" in generator.metadata
    history = catalog.load("loss_history")
    assert list(history.columns[:6]) == ["epoch", "step", "d_loss", "g_loss", "d_real", "d_fake"]
    assert history["step"].is_monotonic_increasing and len(history) > 1
    metrics = catalog.load("metrics")
    assert {"frechet_distance", "frechet_distance_real_floor", "classes_covered", "class_kl_divergence"} <= set(metrics)
    assert all(np.isfinite(value) for value in metrics.values())
    assert catalog.load("registered_model") == {"logged": False}


def test_an_unchanged_judge_is_reused_not_retrained(digits_raw, monkeypatch, tmp_path):
    pipelines = register_pipelines()
    fit_judge_only = pipelines["data_processing"] + pipelines["evaluation"].only_nodes("evaluation.fit_judge")
    params = {"params:data_processing": processing_params(), "params:evaluation": evaluation_params()}
    first = _catalog(raw_dataset=digits_raw, **params)
    first["previous_judge"] = TensorsDataset(str(tmp_path / "absent.safetensors"), missing_ok=True)
    SequentialRunner().run(fit_judge_only, first)
    judge = first.load("judge")  # a free output: kept by the catalog

    trainings = []
    original = evaluation_nodes.train_judge
    monkeypatch.setattr(evaluation_nodes, "train_judge", lambda *a: trainings.append(a) or original(*a))
    second = _catalog(raw_dataset=digits_raw, previous_judge=judge, **params)
    SequentialRunner().run(fit_judge_only, second)
    assert trainings == []
    assert second.load("judge").metadata == judge.metadata

    changed = {**params, "params:evaluation": evaluation_params(judge={"epochs": 3})}
    third = _catalog(raw_dataset=digits_raw, previous_judge=judge, **changed)
    SequentialRunner().run(fit_judge_only, third)
    assert len(trainings) == 1
    assert third.load("judge").metadata["fingerprint"] != judge.metadata["fingerprint"]


def test_promotion_has_nothing_to_do_when_no_version_was_registered_or_it_is_disabled():
    assert promote_generator({"logged": False}, promotion_params()) == {
        "outcome": "skipped",
        "reason": "no model version was registered",
    }
    registered = {"registered_model_name": "gan-generator-digits", "registered_model_version": 3}
    assert promote_generator(registered, promotion_params(enabled=False))["reason"] == "promotion.enabled is false"


def test_a_rerun_of_a_run_whose_gate_decided_keeps_that_decision(mlflow_store):
    """A run stopped after its gate and run again reports the recorded decision instead of deciding twice."""
    client = MlflowClient()
    client.create_registered_model("decided")
    version = client.create_model_version(
        "decided", source="file:///nowhere/generator", tags={"promotion.decision": "kept"}
    )
    client.set_registered_model_alias("decided", "champion", version.version)
    before = client.get_model_version("decided", version.version)

    registered = {"registered_model_name": "decided", "registered_model_version": int(version.version)}
    decision = promote_generator(registered, promotion_params())

    assert (decision["outcome"], decision["champion_version"]) == ("kept", version.version)
    assert client.get_model_version("decided", version.version).tags == before.tags  # nothing written again


def test_a_first_version_no_better_than_its_untrained_generator_leaves_no_champion(mlflow_store):
    client = MlflowClient()
    client.create_registered_model("noise")
    metrics = {"frechet_distance": 30.0, "frechet_distance_untrained": 30.2, "classes_covered": 10}
    registered = {"registered_model_name": "noise", "registered_model_version": int(register(client, "noise", metrics))}

    decision = promote_generator(registered, promotion_params())

    assert (decision["outcome"], decision["champion_version"]) == ("kept", None)
    assert "not made the first champion" in decision["reason"]
    assert client.get_registered_model("noise").aliases == {"challenger": registered["registered_model_version"]}


def test_judge_max_samples_trains_the_judge_on_a_seeded_subset_of_the_split(digits_raw, monkeypatch):
    split = split_of(digits_raw.samples.astype(np.float32) / 127.5 - 1, digits_raw.labels)
    seen = []
    monkeypatch.setattr(evaluation_nodes, "train_judge", lambda images, labels, *rest: seen.append((images, labels)))
    monkeypatch.setattr(evaluation_nodes, "judge_to_tensors", lambda judge, **metadata: metadata)
    for limit in (300, 300, None):
        evaluation_nodes.fit_judge(split, None, evaluation_params(judge={"max_samples": limit}))
    (first, first_labels), (again, _), (everything, _) = seen
    assert len(first) == 300 and len(everything) == len(split.samples)
    assert torch.equal(first, again)  # the same subset for the same judge seed
    rows = {row.tobytes(): label for row, label in zip(split.samples, split.labels, strict=True)}
    assert all(rows[image.numpy().tobytes()] == label for image, label in zip(first, first_labels, strict=True))


def test_the_untrained_floor_is_drawn_as_a_shipped_generator_would_be():
    """A generator that learned nothing ships with standing statistics; the floor must be drawn the same way, or
    calibration alone beats it (in eval mode an untrained BatchNorm uses its initial mean 0, variance 1)."""
    torch.manual_seed(5)
    untrained = build_generator(PRESETS["digits_dcgan"])
    shipped = standing_statistics(untrained, batch_size=128, batches=50, seed=0)
    latent = torch.randn(2048, untrained.arch.latent_dim, generator=torch.Generator().manual_seed(5))

    floor = evaluation_nodes._untrained_draw(shipped, 2048, seed=5)

    assert (floor - sample_images(shipped, latent)).abs().mean() < 0.05
    assert (sample_images(untrained, latent) - sample_images(shipped, latent)).abs().mean() > 0.1  # what it drew
