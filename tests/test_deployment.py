"""The cluster deployment (pipelines/, Dockerfile): the DAG as `make dag` renders it, the Kubernetes manifests
against their schemas, the Dockerfile by hadolint and against the Makefile, no secrets anywhere."""

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kedro_airflow.grouping import group_memory_nodes

from tests.kedro_project import KEDRO, PROJECT_ROOT, VENV_BIN, copy_project, project_env
from tests.kubernetes_schema import validate

KUBERNETES_DIR = PROJECT_ROOT / "pipelines" / "kubernetes"
DAG_FILE = PROJECT_ROOT / "pipelines" / "airflow" / "gan_pipeline_dag.py"
MANIFESTS = sorted(path for path in KUBERNETES_DIR.glob("*.yaml") if path.name != "kustomization.yaml")


def manifests() -> list[tuple[str, dict]]:
    return [(f"{path.name}:{doc['kind']}", doc) for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text())]


def make_dag_recipe() -> list[list[str]]:
    """The commands of the Makefile's `dag` target, as a shell would split them."""
    text = (PROJECT_ROOT / "Makefile").read_text().replace("\\\n", " ")
    recipe = re.search(r"^dag:.*\n((?:\t.*\n)+)", text, re.MULTILINE).group(1)
    return [line.strip().replace("$(BIN)/", f"{VENV_BIN}/").split() for line in recipe.splitlines()]


@pytest.fixture(scope="module")
def fresh_dag(tmp_path_factory) -> Path:
    """`make dag`'s commands in a fresh copy of the project."""
    project = copy_project(tmp_path_factory.mktemp("project"))
    shutil.copytree(PROJECT_ROOT / "pipelines", project / "pipelines")
    (project / "pipelines" / "airflow" / DAG_FILE.name).unlink()
    for command in make_dag_recipe():
        result = subprocess.run(command, cwd=project, env=project_env(), capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return project / "pipelines" / "airflow" / DAG_FILE.name


def test_make_dag_reproduces_the_committed_dag_byte_for_byte(fresh_dag):
    assert fresh_dag.read_bytes() == DAG_FILE.read_bytes(), "run `make dag` and commit pipelines/airflow/"


def test_the_recipe_renders_through_kedro_airflow_by_namespace():
    (create, *_) = make_dag_recipe()
    assert create[:4] == [KEDRO, "airflow", "create", "--pipelines"]
    assert "--group-by" in create and create[create.index("--group-by") + 1] == "namespace"


def test_no_memory_dataset_crosses_from_one_stage_to_another():
    """kedro-airflow's memory grouping joins nodes linked by a MemoryDataset: each group lies in one stage."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT_ROOT)
    with KedroSession.create(project_path=PROJECT_ROOT) as session:
        catalog = session.load_context().catalog
    from kedro.framework.project import pipelines

    default = pipelines["__default__"]
    groups = group_memory_nodes(catalog, default)
    assert len(groups) > 1
    for group in groups:
        stages = {name.split(".")[0] for name in group.nodes}
        assert len(stages) == 1, f"{group.nodes} share a MemoryDataset across stages {stages}"
    assert {group.name for group in default.group_nodes_by("namespace")} == {
        "data_ingestion",
        "data_processing",
        "training",
        "evaluation",
        "promotion",
    }


@pytest.mark.parametrize(("name", "manifest"), manifests(), ids=[name for name, _ in manifests()])
def test_every_manifest_validates_against_its_schema(name, manifest):
    validate(manifest)


@pytest.mark.parametrize(
    ("path", "typo"),
    [
        (["spec", "trainer", "numNode"], 2),
        (["spec", "runtimePatches", 0, "trainingRuntimeSpec", "template", "spec", "replicatedJobs", 0, "nam"], "x"),
        (["spec", "trainer", "resourcesPerNode", "limit"], {"nvidia.com/gpu": "1"}),
    ],
)
def test_a_manifest_with_a_typod_field_fails(path, typo):
    (trainjob,) = [doc for _, doc in manifests() if doc["kind"] == "TrainJob"]
    broken = copy.deepcopy(trainjob)
    parent = broken
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = typo
    with pytest.raises(ValueError, match=re.escape(str(path[-1]))):
        validate(broken)


def test_a_core_manifest_with_a_typod_or_missing_field_fails():
    (pvc,) = [doc for _, doc in manifests() if doc["kind"] == "PersistentVolumeClaim"]
    typo = copy.deepcopy(pvc)
    typo["spec"]["accesModes"] = typo["spec"].pop("accessModes")
    with pytest.raises(ValueError, match=r"PersistentVolumeClaim\.spec\.accesModes"):
        validate(typo)
    (binding,) = [doc for _, doc in manifests() if doc["kind"] == "RoleBinding"]
    missing = copy.deepcopy(binding)
    del missing["roleRef"]["name"]
    with pytest.raises(ValueError, match="name"):
        validate(missing)


def test_the_trainjob_runs_torchrun_on_every_node_with_its_checkpoints_on_the_shared_volume():
    (trainjob,) = [doc for _, doc in manifests() if doc["kind"] == "TrainJob"]
    spec = trainjob["spec"]
    assert spec["runtimeRef"]["name"] == "torch-distributed"
    trainer = spec["trainer"]
    assert trainer["command"][0] == "torchrun" and trainer["command"][-3:] == ["run", "--pipelines", "training"]
    assert trainer["numNodes"] >= 1 and trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"]
    assert all("valueFrom" in env and "value" not in env for env in trainer["env"]), "credentials come from a Secret"
    (node,) = spec["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    pod = node["template"]["spec"]["template"]["spec"]
    (pvc,) = [doc for _, doc in manifests() if doc["kind"] == "PersistentVolumeClaim"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]
    # the checkpoints directory is under the project's data/, which the volume is mounted as
    checkpoints = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_training.yml").read_text())["training"]
    mount = pod["containers"][0]["volumeMounts"][0]["mountPath"]
    assert checkpoints["checkpoint"]["directory"].startswith("data/") and mount == "/app/data"


def test_kustomization_lists_only_files_that_exist():
    kustomization = yaml.safe_load((KUBERNETES_DIR / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (KUBERNETES_DIR / resource).is_file()


def test_the_dockerfile_passes_hadolint():
    result = subprocess.run(
        [str(VENV_BIN / "hadolint"), "--no-color", "Dockerfile"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (PROJECT_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_installs_with_the_makefiles_own_commands():
    runs = [argument for instruction, argument in dockerfile_instructions() if instruction == "RUN"]
    installs = [run for run in runs if "pip" in run or run.startswith("make")]
    assert installs == ["make install VENV=/opt/venv PYTHON=python3 TORCH=cuda"], "as `make install` does, CUDA torch"
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements/run.lock" in makefile  # every package pinned, with its hashes
    assert "torch==2.13.0" in (PROJECT_ROOT / "constraints.txt").read_text()
    assert "torch==2.13.0 --index-url https://pypi.org/simple" in makefile  # TORCH=cuda: the same release, CUDA
    copied = " ".join(argument for instruction, argument in dockerfile_instructions() if instruction == "COPY")
    for needed in ("Makefile", "pyproject.toml", "constraints.txt", "requirements/"):
        assert needed in copied


def test_the_image_is_cuda_based_runs_kedro_and_not_as_root():
    instructions = dockerfile_instructions()
    base = next(argument for instruction, argument in instructions if instruction == "ARG" and "CUDA_IMAGE" in argument)
    assert re.search(r"nvidia/cuda:13\.\d+\.\d+-runtime", base)
    (user,) = [argument for instruction, argument in instructions if instruction == "USER"]
    assert user.split(":")[0].isdigit() and user.split(":")[0] != "0"  # numeric: Kubernetes' runAsNonRoot checks it
    assert ("ENTRYPOINT", '["kedro"]') in instructions


def test_the_image_leaves_out_local_secrets_and_environments():
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    for pattern in ("conf/local", ".venv", ".git", "data", "mlflow.db", ".dvc/config.local", "**/*credentials*"):
        assert pattern in ignored


SECRET_PATTERNS = [
    re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS access key id
    re.compile(r"(?i)(password|secret_access_key|token)\s*[:=]\s*['\"]?[A-Za-z0-9/+]{8,}"),
    re.compile(r"(?i)(postgres|postgresql|mysql)://[^\s'\"]*:[^\s'\"@]*@"),  # credentials in a URI
    re.compile(r"https?://[\w.-]+\.(internal|local|cluster\.local)\b|\b(10|192\.168)\.\d+\.\d+\.\d+"),
]


def test_no_secret_or_cluster_address_in_the_deployment_files():
    planted = ["AKIAIOSFODNN7EXAMPLE", "password: hunter2hunter2", "postgresql://u:pw@db/x", "http://mlflow.internal"]
    assert all(any(pattern.search(text) for pattern in SECRET_PATTERNS) for text in planted)
    files = [*PROJECT_ROOT.joinpath("pipelines").rglob("*"), PROJECT_ROOT / "Dockerfile"]
    files += [PROJECT_ROOT / "conf" / "base" / "airflow.yml", PROJECT_ROOT / ".dockerignore"]
    files += list((PROJECT_ROOT / ".github" / "workflows").glob("*.yml"))
    for path in (path for path in files if path.is_file() and "__pycache__" not in path.parts):
        text = path.read_text()
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(text), f"{path.relative_to(PROJECT_ROOT)}: {pattern.search(text).group(0)}"


def test_the_locks_are_current_and_a_dependency_change_without_make_lock_is_stopped(tmp_path):
    for name in ("pyproject.toml", "constraints.txt", "requirements/run.lock", "requirements/dev.lock"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / name, tmp_path / name)
    shutil.copy2(PROJECT_ROOT / "requirements" / "lock_inputs.py", tmp_path / "requirements" / "lock_inputs.py")
    check = [sys.executable, "requirements/lock_inputs.py", "--check", "requirements/run.lock", "requirements/dev.lock"]
    assert subprocess.run(check, cwd=tmp_path, check=False).returncode == 0  # the committed locks are current

    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"tqdm>=4.66",', '"tqdm>=4.66",\n    "rich>=13",'))
    stale = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert stale.returncode == 1
    assert "run `make lock` and commit the locks" in stale.stderr
    assert "requirements/run.lock, requirements/dev.lock" in stale.stderr
