"""The DVC workflow as users run it: the real `dvc` on a clone of the project, with tiny parameters.

One clone goes through the steps in order (each a module fixture, so a single test still runs the
steps before it): a first `dvc repro`, a no-op one, an evaluation, a training (as `dvc exp run`)
and a processing parameter change, deleted outputs, then `dvc push` and a second clone that pulls.
HOME points at a temporary folder, so the default remote (`~/.cache/gan-pipeline/dvc-remote`) is
used for real without touching the user's.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from tests.dvc_project import BIN, Shell, clone, environment, project_repository

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STAGES = ["data_ingestion", "data_processing", "training", "evaluation", "promotion"]
TINY = {
    "training": {
        "epochs": 1,
        "batch_size": 16,  # ~90 steps: enough to beat the untrained generator, as a first champion must
        "log_every_steps": 5,
        "sample_every_epochs": 1,
        "num_fixed_samples": 16,
        "progress_bar": False,
        "standing_statistics_batches": 10,
        "device": "cpu",
    },
    "evaluation": {"judge": {"epochs": 1}, "num_generated": 256, "device": "cpu", "register_model": False},
}


def stages_run(result: subprocess.CompletedProcess) -> list[str]:
    """The stages DVC executed (not skipped, not restored from its run cache), in order."""
    return re.findall(r"Running stage '([\w-]+)'", result.stdout)


def lock_outputs(lock: dict[str, Any]) -> dict[str, str]:
    """Every output DVC tracks, with the md5 it recorded."""
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])}


def top_level_runs(runs: list[Run]) -> list[Run]:
    return [run for run in runs if MLFLOW_PARENT_RUN_ID not in run.data.tags]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    return environment(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def origin(tmp_path_factory, env) -> Path:
    """The working tree as it would be pushed (tracked and not-ignored files), with tiny parameters."""
    return project_repository(tmp_path_factory.mktemp("origin"), env, TINY)


@pytest.fixture(scope="module")
def workspace(origin, tmp_path_factory, env) -> Shell:
    return clone(origin, tmp_path_factory.mktemp("clones") / "first", env)


@pytest.fixture(scope="module")
def first_repro(workspace) -> subprocess.CompletedProcess:
    result = workspace.dvc("repro")
    workspace.commit("first dvc repro")
    return result


@pytest.fixture(scope="module")
def second_repro(first_repro, workspace) -> tuple[subprocess.CompletedProcess, dict[str, Any]]:
    return workspace.dvc("repro"), workspace.dvc_json("status")


@pytest.fixture(scope="module")
def code_edits(second_repro, workspace) -> dict[str, set[str]]:
    """The stages `dvc status` reports after a comment is appended to one module, each edit undone after."""
    changed = {}
    modules = (
        "promotion.py",
        "registry.py",
        "tracking.py",
        "gan/metrics.py",
        "datasets/image_folder.py",
        "pretrained.py",
    )
    for module in modules:
        path = workspace.cwd / "src" / "gan_pipeline" / module
        original = path.read_text()
        path.write_text(original + "# an edit that changes no behaviour\n")
        changed[module] = set(workspace.dvc_json("status"))
        path.write_text(original)
    assert workspace.dvc_json("status") == {}
    return changed


@pytest.fixture(scope="module")
def hidden_override(second_repro, workspace) -> dict[str, Any]:
    """A conf/local override of a tracked parameter while DVC runs the training stage (DVC sets DVC_STAGE)."""
    local = workspace.cwd / "conf" / "local" / "parameters.yml"
    local.write_text("training:\n  epochs: 3\n")
    before = {path: path.stat().st_mtime_ns for path in (workspace.cwd / "data").rglob("*") if path.is_file()}
    result = workspace.run(str(BIN / "kedro"), "run", "--pipelines", "training", check=False, DVC_STAGE="training")
    after = {path: path.stat().st_mtime_ns for path in (workspace.cwd / "data").rglob("*") if path.is_file()}
    local.unlink()
    return {"result": result, "unchanged": before == after, "runs": len(workspace.runs())}


@pytest.fixture(scope="module")
def evaluation_change(hidden_override, workspace) -> dict[str, Any]:
    workspace.set_params("evaluation", {"confidence_threshold": 0.8})
    result = workspace.dvc("repro")
    workspace.commit("stricter confidence threshold")
    return {"result": result, "runs": workspace.runs()}


@pytest.fixture(scope="module")
def training_experiment(evaluation_change, workspace) -> dict[str, Any]:
    baseline = lock_outputs(workspace.lock())
    change = "conf/base/parameters_training.yml:training.epochs=2"
    result = workspace.dvc("exp", "run", "-S", change, "-n", "two-epochs")
    experiment = {
        "result": result,
        "baseline_outputs": baseline,
        "exp_show": workspace.dvc_json("exp", "show"),
        "metrics_diff": workspace.dvc_json("metrics", "diff"),
        "plots": workspace.dvc_json("plots", "diff", "HEAD"),
        "runs": workspace.runs(),
    }
    workspace.commit("two epochs")
    return experiment


@pytest.fixture(scope="module")
def processing_change(training_experiment, workspace) -> subprocess.CompletedProcess:
    workspace.set_params("data_processing", {"seed": 1})
    result = workspace.dvc("repro")
    workspace.commit("another split")
    return result


@pytest.fixture(scope="module")
def deleted_outputs(processing_change, workspace) -> dict[str, Any]:
    """The generator (training stage, run-cached) and the metrics (evaluation stage, which persists the judge)."""
    generator = workspace.cwd / "data" / "06_models" / "generator.safetensors"
    metrics = workspace.cwd / "data" / "08_reporting" / "metrics.json"
    contents = {generator: generator.read_bytes(), metrics: metrics.read_bytes()}
    runs_before = len(workspace.runs())
    generator.unlink()
    metrics.unlink()
    result = workspace.dvc("repro")
    workspace.commit("outputs restored")
    restored = {path: path.read_bytes() == content for path, content in contents.items()}
    return {"result": result, "restored": restored, "runs_before": runs_before, "runs": workspace.runs()}


@pytest.fixture(scope="module")
def second_clone(deleted_outputs, workspace, env) -> Shell:
    workspace.dvc("push")
    other = clone(workspace.cwd, workspace.cwd.parent / "second", env)
    other.dvc("pull")
    return other


def test_a_fresh_clone_reproduces_every_stage_and_writes_the_lock(first_repro, workspace):
    assert stages_run(first_repro) == STAGES
    output = (first_repro.stdout + first_repro.stderr).lower()
    assert "warn" not in output and "deprecat" not in output, output[-3000:]  # nothing a user cannot act on
    lock = workspace.lock()
    assert list(lock["stages"]) == STAGES
    for path in lock_outputs(lock):
        assert (workspace.cwd / path).stat().st_size > 0, path


def test_a_second_repro_reruns_nothing_and_the_status_is_clean(second_repro):
    result, status = second_repro
    assert stages_run(result) == []
    assert "Data and pipelines are up to date." in result.stdout
    assert status == {}


def test_the_model_has_one_mlflow_run_that_names_its_data_version(first_repro, workspace):
    (run,) = workspace.runs()  # the data stages open no run of their own
    lock = workspace.lock()
    raw = next(out for out in lock["stages"]["data_ingestion"]["outs"] if out["path"].startswith("data/01_raw/"))
    assert run.data.tags["data_version"] == raw["md5"]
    assert run.data.tags["data_version_file"] == raw["path"]
    assert run.data.tags["dataset"] == "digits"
    for key in ("data_ingestion.dataset", "data_processing.seed", "training.epochs", "evaluation.judge.epochs"):
        assert key in run.data.params
    assert {"d_loss", "g_loss", "frechet_distance", "judge_val_accuracy"} <= set(run.data.metrics)
    client = MlflowClient(tracking_uri=f"sqlite:///{workspace.cwd / 'mlflow.db'}")
    folders = ("data", "training", "evaluation")
    artifacts = {item.path for folder in folders for item in client.list_artifacts(run.info.run_id, folder)}
    assert {"data/dataset_card.csv", "data/data_profile.csv", "training/loss_history.csv"} <= artifacts
    assert "evaluation/metrics.json" in artifacts
    record = json.loads((workspace.cwd / "data" / "06_models" / "training_run.json").read_text())
    assert record["run_id"] == run.info.run_id


def test_editing_a_module_leaves_dvc_status_reporting_only_the_stages_that_use_it(code_edits):
    assert code_edits["promotion.py"] == {"promotion"}  # the gate's rule: no retraining, no re-evaluation
    assert code_edits["registry.py"] == {"evaluation", "promotion"}  # registration and the gate's registry I/O
    assert code_edits["tracking.py"] == {"training", "evaluation", "promotion"}  # the active run, in every stage
    assert code_edits["gan/metrics.py"] == {"evaluation"}
    assert code_edits["datasets/image_folder.py"] == {"data_ingestion"}
    assert code_edits["pretrained.py"] == {"evaluation"}  # Inception's weights


def test_a_parameter_override_dvc_cannot_see_stops_the_stage_before_any_work(hidden_override):
    result = hidden_override["result"]
    assert result.returncode != 0
    output = " ".join((result.stdout + result.stderr).split())
    assert "these parameters differ from conf/base" in output
    assert "training.epochs" in output and "dvc exp run -S" in output
    assert hidden_override["unchanged"]
    assert hidden_override["runs"] == 1


def test_changing_an_evaluation_parameter_reruns_only_the_evaluation(evaluation_change):
    assert stages_run(evaluation_change["result"]) == ["evaluation", "promotion"]


def test_a_reevaluation_with_new_settings_is_a_child_of_the_training_run(evaluation_change):
    training, child = evaluation_change["runs"]
    assert child.data.tags[MLFLOW_PARENT_RUN_ID] == training.info.run_id
    assert child.data.params["evaluation.confidence_threshold"] == "0.8"
    assert training.data.params["evaluation.confidence_threshold"] == "0.9"
    assert "frechet_distance" in child.data.metrics
    assert training.info.status == child.info.status == "FINISHED"


def test_an_experiment_on_a_training_parameter_reruns_training_and_evaluation(training_experiment):
    assert stages_run(training_experiment["result"]) == ["training", "evaluation", "promotion"]


def test_the_experiment_is_listed_with_metrics_that_differ_from_its_baseline(training_experiment):
    (baseline,) = (entry for entry in training_experiment["exp_show"] if entry["rev"] != "workspace")
    (experiment,) = (rev for exp in baseline["experiments"] for rev in exp["revs"] if rev["name"] == "two-epochs")

    def metrics(entry: dict[str, Any]) -> dict[str, float]:
        return entry["data"]["metrics"]["data/08_reporting/metrics.json"]["data"]

    def epochs(entry: dict[str, Any]) -> int:
        return entry["data"]["params"]["conf/base/parameters_training.yml"]["data"]["training"]["epochs"]

    assert (epochs(baseline), epochs(experiment)) == (1, 2)
    assert metrics(experiment) != metrics(baseline)
    changed = training_experiment["metrics_diff"]["data/08_reporting/metrics.json"]
    assert "frechet_distance" in changed


def test_the_plots_compare_losses_by_step_and_show_the_sample_grids(training_experiment):
    plots = training_experiment["plots"]["data"]
    (losses,) = plots["Losses"]
    fields = {row["field"] for row in losses["content"]["data"]["values"]}
    revisions = {row["rev"] for row in losses["content"]["data"]["values"]}
    assert fields == {"d_loss", "g_loss"} and revisions == {"workspace", "HEAD"}
    assert losses["content"]["encoding"]["x"]["field"] == "step"
    for image in ("data/08_reporting/training_progress.png", "data/08_reporting/evaluation_samples.png"):
        assert {entry["type"] for entry in plots[image]} == {"image"}


def test_the_plots_page_draws_the_loss_chart_with_the_network_off(training_experiment, workspace, tmp_path):
    """`dvc plots show` writes HTML from the project's template (Vega inlined); Chromium opens it with every
    http(s) request refused, as on a machine without a network."""
    if shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is a dev dependency")
    page_file = Path(
        workspace.dvc("plots", "show", "-o", str(tmp_path / "plots")).stdout.strip().removeprefix("file://")
    )
    refused = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route(re.compile(r"^https?://"), lambda route: (refused.append(route.request.url), route.abort()))
            page.goto(page_file.as_uri())
            chart = page.locator(".vega-embed canvas, .vega-embed svg.marks").first
            sync_api.expect(chart).to_be_visible(timeout=30_000)
            box = chart.bounding_box()
            page.screenshot(path=tmp_path / "plots.png", full_page=True)
        finally:
            browser.close()
    assert refused == []  # nothing was even asked of the network
    assert box["width"] > 200 and box["height"] > 100


def test_every_trained_model_has_its_own_run(training_experiment):
    models = top_level_runs(training_experiment["runs"])
    assert [run.data.params["training.epochs"] for run in models] == ["1", "2"]
    assert all("frechet_distance" in run.data.metrics for run in models)


def test_changing_a_processing_parameter_reruns_processing_training_and_evaluation(processing_change):
    assert stages_run(processing_change) == ["data_processing", "training", "evaluation", "promotion"]


def test_deleted_outputs_come_back_from_the_cache_or_by_rerunning_their_stage_alone(deleted_outputs):
    result = deleted_outputs["result"]
    assert "Stage 'training' is cached - skipping run, checking out outputs" in result.stdout
    # Evaluation's judge is persisted, so DVC keeps no run cache for it; the new registration then
    # goes through the promotion gate again.
    assert stages_run(result) == ["evaluation", "promotion"]
    assert all(deleted_outputs["restored"].values()), deleted_outputs["restored"]
    # The rerun evaluation logs into the model's own run, whose parameters did not change: no new run.
    assert len(deleted_outputs["runs"]) == deleted_outputs["runs_before"]


def test_a_second_clone_pulls_every_output_byte_for_byte_and_reruns_nothing(second_clone, workspace):
    outputs = lock_outputs(second_clone.lock())
    assert outputs == lock_outputs(workspace.lock())
    for path in outputs:
        assert (second_clone.cwd / path).read_bytes() == (workspace.cwd / path).read_bytes(), path
    assert stages_run(second_clone.dvc("repro")) == []
    assert second_clone.dvc_json("status") == {}


def all_artifacts(client: MlflowClient, run_id: str, folder: str | None = None) -> set[str]:
    paths = set()
    for item in client.list_artifacts(run_id, folder):
        paths |= all_artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return paths


@pytest.fixture(scope="module")
def kedro_run_and_dvc_experiment(origin, tmp_path_factory, env) -> dict[str, Any]:
    """In a clone of its own that registers models: a `kedro run`, then the same pipeline as a named `dvc exp run`."""
    shell = clone(origin, tmp_path_factory.mktemp("identity") / "clone", env)
    shell.set_params("evaluation", {"register_model": True})
    shell.commit("register the generators")
    shell.run(str(BIN / "kedro"), "run")
    result = shell.dvc("exp", "run", "-n", "tiny-registered")
    by_run = top_level_runs(shell.runs())
    client = MlflowClient(tracking_uri=f"sqlite:///{shell.cwd / 'mlflow.db'}")
    artifacts = {run.info.run_id: all_artifacts(client, run.info.run_id) for run in by_run}
    head = shell.run("git", "rev-parse", "HEAD").stdout.strip()
    return {"result": result, "runs": by_run, "artifacts": artifacts, "head": head}


def test_a_kedro_run_and_a_dvc_experiment_have_names_a_person_tells_apart(kedro_run_and_dvc_experiment):
    kedro_run, experiment_run = kedro_run_and_dvc_experiment["runs"]
    assert kedro_run.info.run_name == "digits-1ep"
    assert experiment_run.info.run_name == "tiny-registered (digits-1ep)"
    assert "Started by `kedro run --pipelines=__default__` at commit" in kedro_run.data.tags["mlflow.note.content"]
    assert "dvc exp apply tiny-registered" in experiment_run.data.tags["mlflow.note.content"]


def test_the_dvc_experiment_run_records_the_experiment_name_and_its_baseline(kedro_run_and_dvc_experiment):
    kedro_run, experiment_run = kedro_run_and_dvc_experiment["runs"]
    assert experiment_run.data.tags["dvc.experiment"] == "tiny-registered"
    assert experiment_run.data.tags["dvc.baseline_rev"] == kedro_run_and_dvc_experiment["head"]
    assert "dvc.experiment" not in kedro_run.data.tags
    commands = experiment_run.data.tags["kedro_command"].split(" && ")
    assert commands == [f"kedro run --pipelines={stage}" for stage in ("training", "evaluation", "promotion")]


def test_both_runs_carry_the_same_record_promotion_included(kedro_run_and_dvc_experiment):
    kedro_run, experiment_run = kedro_run_and_dvc_experiment["runs"]
    assert set(kedro_run.data.params) == set(experiment_run.data.params)
    assert {key for key in kedro_run.data.params if key.startswith("promotion.")} >= {"promotion.enabled"}
    promotion_tags = ("promotion.decision", "promotion.model_version")
    assert [kedro_run.data.tags[key] for key in promotion_tags] == ["first_champion", "1"]
    assert experiment_run.data.tags["promotion.model_version"] == "2"
    assert experiment_run.data.tags["promotion.decision"] in ("promoted", "kept")
    artifacts = kedro_run_and_dvc_experiment["artifacts"]
    assert artifacts[kedro_run.info.run_id] == artifacts[experiment_run.info.run_id]
    assert "promotion/promotion_decision.json" in artifacts[kedro_run.info.run_id]
    assert set(kedro_run.data.metrics) == set(experiment_run.data.metrics)
