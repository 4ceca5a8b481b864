"""Runs with different parameters against a live `mlflow server`: compared on the same metrics, then gated."""

import json
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest
from PIL import Image

from tests.kedro_project import copy_project, kedro

pytestmark = pytest.mark.slow

MODEL = "gan-generator-digits"
GAN_PIPELINE = str(Path(sys.executable).with_name("gan-pipeline"))
SMALL = (
    "training.progress_bar=false,training.standing_statistics_batches=10,training.log_every_steps=5,"
    "training.sample_every_epochs=1,training.batch_size=64,"
    "evaluation.judge.epochs=4,evaluation.num_generated=500"
)
# A judge of 4 epochs separates these generators clearly (frechet_distance about 24 vs 32); one of
# 2 epochs barely does (4.1 vs 4.2).
# Real training (about 900 steps: fewer leave the generator further from the data than its random
# start, as the judge sees it), with CPU/memory sampled every second into system/* metrics.
TRAINED = f"{SMALL},training.epochs=5,training.batch_size=32,training.system_metrics_interval_s=1"
# A learning rate so small that the generator stays at its random initialisation: a worse generator.
UNTRAINED = f"{SMALL},training.epochs=1,training.generator_lr=1e-9"


def rest(server: str, endpoint: str, **query: str) -> dict:
    url = f"{server}/api/2.0/mlflow/{endpoint}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def rest_post(server: str, endpoint: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{server}/api/2.0/mlflow/{endpoint}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def aliases(server: str) -> dict[str, str]:
    model = rest(server, "registered-models/get", name=MODEL)["registered_model"]
    return {entry["alias"]: entry["version"] for entry in model.get("aliases", [])}


def version_tags(server: str, version: str) -> tuple[dict[str, str], str]:
    found = rest(server, "model-versions/get", name=MODEL, version=version)["model_version"]
    return {tag["key"]: tag["value"] for tag in found.get("tags", [])}, found.get("description", "")


@pytest.fixture(scope="module")
def runs(mlflow_server, tmp_path_factory) -> list[subprocess.CompletedProcess]:
    """A trained run, an untrained one, then another untrained one (reusing the prepared data and judge)."""
    project = copy_project(tmp_path_factory.mktemp("promotion_project"))
    results = []
    for args in (
        ("run", "--params", TRAINED),
        ("run", "--from-nodes", "training.train_model", "--params", UNTRAINED),
        ("run", "--from-nodes", "training.train_model", "--params", f"{UNTRAINED},training.seed=1"),
    ):
        results.append(kedro(project, *args, tracking_uri=mlflow_server))
        assert results[-1].returncode == 0, results[-1].stdout[-3000:] + results[-1].stderr[-3000:]
    return results


@pytest.fixture(scope="module")
def logged_runs(runs, mlflow_server) -> list[dict]:
    """The runs as the REST API returns them, oldest first."""
    experiment = rest(mlflow_server, "experiments/get-by-name", experiment_name="gan-pipeline")["experiment"]
    found = rest_post(
        mlflow_server,
        "runs/search",
        {"experiment_ids": [experiment["experiment_id"]], "order_by": ["attributes.start_time ASC"]},
    )["runs"]
    assert len(found) == 3
    return found


def metrics_of(run: dict) -> dict[str, float]:
    return {metric["key"]: metric["value"] for metric in run["data"]["metrics"]}


def test_every_run_is_visible_through_the_rest_api_with_the_same_metric_keys(logged_runs):
    # system/* metrics depend on how long training ran (a sample per second here); the rest must match.
    keys = [{key for key in metrics_of(run) if not key.startswith("system/")} for run in logged_runs]
    assert keys[0] == keys[1] == keys[2]
    assert {"frechet_distance", "classes_covered", "precision", "recall", "density", "coverage"} <= keys[0]
    params = [{p["key"]: p["value"] for p in run["data"]["params"]} for run in logged_runs]
    assert params[0]["training.epochs"] == "5" and params[1]["training.epochs"] == "1"


def test_training_logged_system_metrics(logged_runs):
    assert "system/cpu_utilization_percentage" in metrics_of(logged_runs[0])
    assert "system/system_memory_usage_megabytes" in metrics_of(logged_runs[0])


def replay_gate(logged_runs: list[dict], margin: float = 0.02) -> list[tuple[str, str]]:
    """The gate's rule replayed on the logged metrics: (decision, champion compared with) per version.

    Version N is run N (each run registers one version). Which tiny run scores better is up to the
    judge, so the test checks the gate against its rule rather than assuming an order.
    """
    decisions, champion = [("first_champion", "")], 1
    for version in (2, 3):
        new, old = metrics_of(logged_runs[version - 1]), metrics_of(logged_runs[champion - 1])
        better = new["frechet_distance"] < old["frechet_distance"] * (1 - margin)
        if better and new["classes_covered"] >= old["classes_covered"]:
            decisions.append(("promoted", str(champion)))
            champion = version
        else:
            decisions.append(("kept", str(champion)))
    return decisions


def champion_after(decisions: list[tuple[str, str]]) -> str:
    return str(max(index + 1 for index, (decision, _) in enumerate(decisions) if decision != "kept"))


def test_the_champion_is_the_version_the_gate_rule_picks_and_every_decision_is_recorded(logged_runs, mlflow_server):
    decisions = replay_gate(logged_runs)
    assert aliases(mlflow_server) == {"champion": champion_after(decisions), "challenger": "3"}
    first, _ = version_tags(mlflow_server, "1")
    assert first["promotion.decision"] == "first_champion"
    for version, run in (("2", logged_runs[1]), ("3", logged_runs[2])):
        tags, description = version_tags(mlflow_server, version)
        decision, compared_with = decisions[int(version) - 1]
        assert tags["promotion.decision"] == decision
        assert tags["promotion.compared_with_version"] == compared_with
        assert float(tags["promotion.frechet_distance"]) == pytest.approx(metrics_of(run)["frechet_distance"], rel=1e-4)
        assert ("not promoted" if decision == "kept" else "promoted over") in description
        assert tags["dataset"] == "digits" and tags["judge_fingerprint"] == first["judge_fingerprint"]


def test_each_run_reports_its_promotion_decision(runs, logged_runs):
    decisions = replay_gate(logged_runs)
    assert "first champion" in runs[0].stdout + runs[0].stderr
    expected = "not promoted" if decisions[1][0] == "kept" else "promoted over version 1"
    assert expected in runs[1].stdout + runs[1].stderr


def test_the_champion_generates_from_the_server_in_python_and_on_the_command_line(runs, mlflow_server, tmp_path):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server)
    try:
        images = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion").predict({"num_samples": 6, "seed": 3})
    finally:
        mlflow.set_tracking_uri(previous)
    assert images.shape == (6, 1, 8, 8) and images.dtype == np.float32

    out = tmp_path / "grid.png"
    command = [GAN_PIPELINE, "generate", "--model", f"models:/{MODEL}@champion", "--num", "16", "--seed", "0"]
    result = subprocess.run(
        [*command, "--out", str(out), "--tracking-uri", mlflow_server],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with Image.open(out) as picture:
        picture.verify()
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.mode == "L" and picture.size == (4 * 72 + 8, 4 * 72 + 8)


def test_compare_prints_the_runs_side_by_side_with_the_params_that_differ(runs, logged_runs, mlflow_server):
    result = subprocess.run(
        [GAN_PIPELINE, "compare", "--tracking-uri", mlflow_server],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    header, *rows = [line for line in result.stdout.splitlines() if line.strip()]
    # Parameters by their shortest distinct names (training.epochs -> epochs), the model's name once, as a header.
    for column in ("epochs", "generator_lr", "seed", "frechet_distance", "precision", MODEL):
        assert column in header.split()
    assert "dataset" not in header.split()  # the same in every run
    body = "\n".join(rows)
    champion = champion_after(replay_gate(logged_runs))
    assert MODEL not in body and f" v{champion} @champion" in body and "@challenger" in body
    assert sum(f" v{version}" in body for version in (1, 2, 3)) == 3
