"""A team's stack, started by the suite on loopback: `mlflow server` on PostgreSQL with its artifacts in S3 (moto's
server), and a DVC remote on the same S3. The pipeline, the registry, the gate and `gan-pipeline generate` run against
it by configuration alone; DVC pushes to it and a fresh clone pulls; four trainings share it at once."""

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.dvc_project import BIN, Shell, clone, environment, project_repository
from tests.kedro_project import KEDRO, copy_project
from tests.team_services import S3Server, running_team_stack, s3_keys

pytestmark = pytest.mark.slow

MODEL = "gan-generator-digits"
# Every run here is scored alike (judge, sample count), so the gate can compare all of their versions.
TINY = {
    "training": {
        "epochs": 1,
        "batch_size": 16,  # ~90 steps: enough to beat the untrained generator, as a first champion must
        "log_every_steps": 5,
        "progress_bar": False,
        "device": "cpu",
        "standing_statistics_batches": 10,
    },
    "evaluation": {"judge": {"epochs": 1}, "num_generated": 256, "device": "cpu", "register_model": True},
}
TINY_OVERRIDES = (
    "training.epochs=1,training.batch_size=16,training.log_every_steps=5,training.progress_bar=false,"
    "training.standing_statistics_batches=10,"
    "training.device=cpu,evaluation.judge.epochs=1,evaluation.num_generated=256,evaluation.device=cpu"
)
CONCURRENT_RUNS = 4


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> tuple[str, S3Server]:
    with running_team_stack(tmp_path_factory.mktemp("stack")) as services:
        yield services


@pytest.fixture(scope="module")
def client(stack) -> MlflowClient:
    return MlflowClient(tracking_uri=stack[0])


@pytest.fixture(scope="module")
def team_env(stack, tmp_path_factory) -> dict[str, str]:
    """A user's environment pointed at the stack: the tracking URI and S3's endpoint and keys, nothing else."""
    tracking_uri, s3 = stack
    return {**environment(tmp_path_factory.mktemp("home")), **s3.environment(), "MLFLOW_TRACKING_URI": tracking_uri}


def use_team_remote(shell: Shell, s3: S3Server) -> None:
    """The DVC remote on S3, configured as README says (in .dvc/config.local: the endpoint is this machine's)."""
    shell.dvc("remote", "add", "--local", "--default", "team", f"s3://{s3.bucket}/dvc")
    shell.dvc("remote", "modify", "--local", "team", "endpointurl", s3.endpoint_url)


@pytest.fixture(scope="module")
def team_repro(stack, team_env, tmp_path_factory) -> Shell:
    root = tmp_path_factory.mktemp("team")
    workspace = clone(project_repository(root / "origin", team_env, TINY), root / "first", team_env)
    use_team_remote(workspace, stack[1])
    workspace.dvc("repro")
    workspace.run("git", "add", "-A")
    workspace.run("git", "commit", "-qm", "first dvc repro")
    return workspace


def test_the_pipeline_logs_and_registers_into_postgres_and_s3(team_repro, client, stack):
    (run,) = client.search_runs([client.get_experiment_by_name("gan-pipeline").experiment_id])
    assert run.info.status == "FINISHED"
    assert {"frechet_distance", "classes_covered", "d_loss"} <= set(run.data.metrics)
    assert run.data.params["training.epochs"] == "1"
    keys = s3_keys(stack[1], "mlflow/")
    assert any(key.endswith(f"{run.info.run_id}/artifacts/evaluation_samples.png") for key in keys)
    assert any(key.endswith("/artifacts/generator.safetensors") for key in keys)  # the registered model's weights
    (version,) = client.search_model_versions(f"name = '{MODEL}'")
    assert version.run_id == run.info.run_id
    assert version.tags["promotion.decision"] == "first_champion"
    assert client.get_registered_model(MODEL).aliases["champion"] == version.version


def test_generate_draws_from_the_champion_on_the_team_server(team_repro, team_env, tmp_path):
    out = tmp_path / "samples.npz"
    result = team_repro.run(
        str(BIN / "gan-pipeline"), "generate", "--model", f"models:/{MODEL}@champion", "--num", "4", "--out", str(out)
    )
    assert f"wrote 4 images of shape (1, 8, 8) from models:/{MODEL}@champion" in result.stdout
    images = np.load(out)["images"]
    assert images.shape == (4, 1, 8, 8) and -1 <= images.min() < images.max() <= 1


def test_dvc_pushes_to_s3_and_a_fresh_clone_pulls_and_reruns_nothing(team_repro, stack, team_env):
    team_repro.dvc("push")
    assert any(key.startswith("dvc/files/md5/") for key in s3_keys(stack[1], "dvc/"))
    other = clone(team_repro.cwd, team_repro.cwd.parent / "second", team_env)
    use_team_remote(other, stack[1])
    other.dvc("pull")
    assert (other.cwd / "data" / "06_models" / "generator.safetensors").read_bytes() == (
        team_repro.cwd / "data" / "06_models" / "generator.safetensors"
    ).read_bytes()
    assert "Running stage" not in other.dvc("repro").stdout
    assert json.loads(other.dvc("status", "--json").stdout) == {}


def test_four_trainings_at_once_lose_no_metric_and_leave_one_champion(team_repro, client, team_env, tmp_path):
    """Each in its own project folder, all on the shared server; their gates finish together and take turns."""
    projects = [copy_project(tmp_path / f"seed{seed}") for seed in range(1, CONCURRENT_RUNS + 1)]
    env = {**team_env, "OMP_NUM_THREADS": "1"}
    processes = [
        subprocess.Popen(
            [KEDRO, "run", "--params", f"{TINY_OVERRIDES},training.seed={seed}"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for seed, project in enumerate(projects, start=1)
    ]
    outputs = [process.communicate(timeout=900)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]

    for project in projects:
        run_id = json.loads((project / "data" / "06_models" / "training_run.json").read_text())["run_id"]
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        logged_here = json.loads((project / "data" / "08_reporting" / "metrics.json").read_text())
        assert {name: run.data.metrics[name] for name in logged_here} == pytest.approx(logged_here)
        steps = pd.read_csv(project / "data" / "08_reporting" / "loss_history.csv")["step"].tolist()
        assert [metric.step for metric in client.get_metric_history(run_id, "d_loss")] == steps

    versions = {v.version: v.tags for v in client.search_model_versions(f"name = '{MODEL}'")}
    assert len(versions) == 1 + CONCURRENT_RUNS
    decisions = [tags.get("promotion.decision") for tags in versions.values()]
    assert None not in decisions and decisions.count("first_champion") == 1
    # One chain of champions: each crowned over the one before it, and only the last one still reigns.
    crowned = [
        number for number, tags in versions.items() if tags["promotion.decision"] in ("first_champion", "promoted")
    ]
    reigning = [number for number in crowned if "promotion.replaced_by_version" not in versions[number]]
    assert reigning == [client.get_registered_model(MODEL).aliases["champion"]]
    for number in crowned:
        predecessor = versions[number].get("promotion.compared_with_version")
        if versions[number]["promotion.decision"] == "promoted":
            assert versions[predecessor]["promotion.replaced_by_version"] == number
    assert not [model.name for model in client.search_registered_models() if model.name.endswith(".gate-lock")]


def test_the_remote_endpoint_stays_out_of_the_committed_configuration(team_repro):
    assert "endpointurl" not in (team_repro.cwd / ".dvc" / "config").read_text()
    assert team_repro.run("git", "check-ignore", ".dvc/config.local").returncode == 0
