"""The gan_pipeline DAG on the real engine: Airflow 3 in a virtual environment of its own (`make airflow`,
cached in .venv-airflow), the DAG as Airflow parses it, then `airflow dags test` with the tasks as local
processes on tiny parameters, against what `kedro run` leaves in a twin project."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.kedro_project import PROJECT_ROOT, copy_project, kedro, project_env
from tests.kubernetes_schema import validate
from tests.test_deployment import make_dag_recipe
from tests.warm_kedro import shim

pytestmark = pytest.mark.slow

AIRFLOW_BIN = PROJECT_ROOT / ".venv-airflow" / "bin"
STAGES = ["data_ingestion", "data_processing", "training", "evaluation", "promotion"]
TINY = {
    "training": {
        "epochs": 2,
        "sample_every_epochs": 1,
        "log_every_steps": 5,
        "progress_bar": False,
        "standing_statistics_batches": 10,
    },
    "evaluation": {"judge": {"epochs": 2}},
}


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> dict[str, str]:
    """Airflow installed (once; `make airflow`) and a fresh metadata database; the environment to call it in."""
    installed = subprocess.run(
        ["make", "airflow"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    home = tmp_path_factory.mktemp("airflow")
    env = {
        **project_env(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "PATH": f"{AIRFLOW_BIN}{os.pathsep}{os.environ['PATH']}",
    }
    migrated = airflow(env, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    return env


def airflow(env: dict[str, str], *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(AIRFLOW_BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def dag_tasks(env: dict[str, str], dag_folder: Path, tmp_path: Path) -> dict:
    """The DAG as Airflow's own DagBag parses it (tests/airflow_dag_tasks.py, run by Airflow's Python)."""
    output = tmp_path / "tasks.json"
    script = PROJECT_ROOT / "tests" / "airflow_dag_tasks.py"
    command = [str(AIRFLOW_BIN / "python"), str(script), str(dag_folder), str(output)]
    parsed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    return json.loads(output.read_text())


@pytest.fixture(scope="module")
def pods(airflow_home, tmp_path_factory) -> dict:
    env = {**airflow_home, "GAN_PIPELINE_TASKS": "kubernetes"}
    return dag_tasks(env, PROJECT_ROOT / "pipelines" / "airflow", tmp_path_factory.mktemp("pods"))


def execution_order(tasks: dict[str, dict]) -> list[str]:
    """Tasks in the order Airflow can run them (each after its upstream), ties broken by declaration order."""
    order: list[str] = []
    while len(order) < len(tasks):
        order.append(next(t for t, d in tasks.items() if t not in order and set(d["upstream"]) <= set(order)))
    return order


def test_the_dag_runs_one_task_per_kedro_pipeline_in_the_pipelines_order(pods):
    assert execution_order(pods["tasks"]) == STAGES
    assert pods["tasks"]["evaluation"]["upstream"] == ["data_processing", "training"]


def test_the_schedule_is_the_weekly_slot_of_the_retraining_workflow(pods):
    workflow = yaml.safe_load((PROJECT_ROOT / ".github" / "workflows" / "retrain.yml").read_text())
    (slot,) = workflow[True]["schedule"]  # YAML reads the `on:` key as True
    assert pods["schedule"] == slot["cron"]


def test_every_pod_validates_and_only_training_requests_a_gpu(pods):
    settings = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "airflow.yml").read_text())["default"]["kubernetes"]
    for stage, task in pods["tasks"].items():
        assert task["operator"] == "KubernetesPodOperator"
        pod = validate(task["pod"])
        (container,) = pod.spec.containers
        assert container.args[:3] == ["run", "--pipelines", stage]
        assert container.env_from[0].secret_ref.name == settings["secret"]
        assert pod.spec.volumes[0].persistent_volume_claim.claim_name == settings["data_volume_claim"]
        assert pod.spec.security_context.run_as_non_root is True
        gpus = (container.resources.limits or {}).get("nvidia.com/gpu")
        if stage == "training":
            assert gpus == str(settings["gpu"]["count"])
            assert pod.spec.node_selector == settings["gpu"]["node_selector"]
            assert [t.key for t in pod.spec.tolerations] == [t["key"] for t in settings["gpu"]["tolerations"]]
            assert pod.metadata.annotations["gan-pipeline/kedro-tags"] == "gpu"
        else:
            assert gpus is None and not pod.spec.node_selector and not pod.spec.tolerations


def test_a_pod_with_a_typod_field_fails_validation(pods):
    pod = json.loads(json.dumps(pods["tasks"]["training"]["pod"]))
    pod["spec"]["containers"][0]["volumeMount"] = pod["spec"]["containers"][0].pop("volumeMounts")
    with pytest.raises(ValueError, match="volumeMount"):
        validate(pod)


def test_a_multi_gpu_training_pod_starts_one_process_per_gpu(airflow_home, tmp_path):
    """`gpu.count: 2` in the project's airflow.yml (here conf/local's): `make dag` renders torchrun --standalone."""
    project = copy_project(tmp_path / "project")
    shutil.copytree(PROJECT_ROOT / "pipelines", project / "pipelines")
    settings = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "airflow.yml").read_text())
    settings["default"]["kubernetes"]["gpu"]["count"] = 2
    (project / "conf" / "local" / "airflow.yml").write_text(yaml.safe_dump(settings))
    for command in make_dag_recipe():
        assert subprocess.run(command, cwd=project, env=project_env(), capture_output=True, check=False).returncode == 0
    env = {**airflow_home, "GAN_PIPELINE_TASKS": "kubernetes"}
    tasks = dag_tasks(env, project / "pipelines" / "airflow", tmp_path)["tasks"]
    (container,) = validate(tasks["training"]["pod"]).spec.containers
    assert container.command == ["torchrun", "--standalone", "--nproc-per-node", "2", "/opt/venv/bin/kedro"]
    assert container.args == ["run", "--pipelines", "training"] and container.resources.limits["nvidia.com/gpu"] == "2"
    (evaluation,) = validate(tasks["evaluation"]["pod"]).spec.containers
    assert not evaluation.command  # the image's entry point, kedro


def tiny_project(root: Path) -> Path:
    project = copy_project(root)
    (project / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(TINY))
    return project


@pytest.fixture(scope="module")
def dag_run(airflow_home, tmp_path_factory):
    """`airflow dags test gan_pipeline`, tasks as local processes, in a copy of the project holding the DAG."""
    project = tiny_project(tmp_path_factory.mktemp("airflow_project"))
    shutil.copytree(PROJECT_ROOT / "pipelines", project / "pipelines")
    env = {
        **airflow_home,
        "AIRFLOW__CORE__DAGS_FOLDER": str(project / "pipelines" / "airflow"),
        "GAN_PIPELINE_TASKS": "local",
        "GAN_PIPELINE_KEDRO": str(shim()),
    }
    result = airflow(env, "dags", "test", "gan_pipeline", timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (run,) = json.loads(airflow(env, "dags", "list-runs", "gan_pipeline", "-o", "json").stdout.splitlines()[-1])
    states = airflow(env, "tasks", "states-for-dag-run", "gan_pipeline", run["run_id"], "-o", "json")
    return project, run, json.loads(states.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def kedro_run(tmp_path_factory) -> Path:
    project = tiny_project(tmp_path_factory.mktemp("kedro_project"))
    result = kedro(project, "run")
    assert result.returncode == 0, result.stderr[-3000:]
    return project


def test_every_task_of_the_dag_run_succeeds(dag_run):
    _, run, states = dag_run
    assert run["state"] == "success"
    assert {state["task_id"]: state["state"] for state in states} == dict.fromkeys(STAGES, "success")


def outputs(project: Path) -> set[str]:
    return {path.relative_to(project).as_posix() for path in (project / "data").rglob("*") if path.is_file()}


def test_the_dag_leaves_what_kedro_run_leaves(dag_run, kedro_run):
    project, _, _ = dag_run
    assert outputs(project) == outputs(kedro_run)
    metrics = [json.loads((p / "data" / "08_reporting" / "metrics.json").read_text()) for p in (project, kedro_run)]
    assert metrics[0].keys() == metrics[1].keys()
    assert metrics[0] == pytest.approx(metrics[1], rel=1e-6)


def measured(run) -> dict[str, float]:
    """The run's metrics of the model, not of the machine (speed, and system/* sampled every few seconds)."""
    machine = ("system/", "images_per_second")
    return {key: value for key, value in run.data.metrics.items() if not key.startswith(machine)}


def test_the_dag_leaves_one_mlflow_run_and_the_registered_champion_as_kedro_run_does(dag_run, kedro_run):
    project, _, _ = dag_run
    recorded = []
    for root in (project, kedro_run):
        client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
        (run,) = client.search_runs([client.get_experiment_by_name("gan-pipeline").experiment_id])
        (version,) = client.search_model_versions("name='gan-generator-digits'")
        aliases = client.get_registered_model("gan-generator-digits").aliases
        recorded.append((run, version, aliases))
    (dag, dag_version, dag_aliases), (direct, direct_version, direct_aliases) = recorded
    assert dag.info.status == direct.info.status == "FINISHED"
    assert measured(dag) == pytest.approx(measured(direct), rel=1e-6)
    assert dag.data.params == direct.data.params
    for tag in ("promotion.decision", "promotion.model_version", "dataset", "data_version"):
        assert dag.data.tags[tag] == direct.data.tags[tag]
    assert dag_version.run_id == dag.info.run_id and str(dag_version.version) == str(direct_version.version) == "1"
    assert dag_aliases == direct_aliases and set(dag_aliases) == {"champion", "challenger"}
