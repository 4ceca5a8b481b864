"""The active MLflow run: its tags, params, per-step and system metrics, and which run a pipeline logs into.

Nodes and hooks reach the run only through here; registered model versions are ``registry.py``'s.
Every function used by nodes is a no-op when no MLflow run is active, so nodes also run under a
bare ``SequentialRunner`` in tests or without kedro-mlflow.
"""

import atexit
import fcntl
import importlib.util
import logging
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import LifecycleStage, Run
from mlflow.exceptions import MlflowException
from mlflow.utils.async_logging.run_operations import RunOperations
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

from gan_pipeline.config.base import flatten_params
from gan_pipeline.errors import UserError
from gan_pipeline.gan.checkpoints import CheckpointRecord
from gan_pipeline.splits import DatasetRecord

logger = logging.getLogger(__name__)


class StepMetricsLogger:
    """Per-step metrics for the active run, logged in the background, skipping steps the run already holds.

    A resumed run replays its history from the checkpoint and recomputes the steps between the
    checkpoint and the interruption; each step lands in MLflow once, with no gap. Written synchronously
    to a SQLite store, the writes cost the default run a few percent of its training time, so they
    queue behind training; leaving the ``with`` block waits for them and raises if one failed.
    """

    def __init__(self, key: str = "d_loss") -> None:
        active = mlflow.active_run()
        history = MlflowClient().get_metric_history(active.info.run_id, key) if active is not None else []
        self.last_logged_step = max((metric.step for metric in history), default=0)
        self.pending: list[RunOperations] = []

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        if step > self.last_logged_step and mlflow.active_run() is not None:
            values = {k: float(v) for k, v in metrics.items() if k not in ("epoch", "step")}
            self.pending.append(mlflow.log_metrics(values, step=step, synchronous=False))
            self.last_logged_step = step

    def __enter__(self) -> "StepMetricsLogger":
        return self

    def __exit__(self, *exc_info: object) -> None:
        pending, self.pending = self.pending, []
        for operation in pending:
            operation.wait()


PROCESS_TAG = "process"  # host:pid of the process that logs into the run


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def end_runs_of_dead_processes(experiment_name: str) -> list[str]:
    """End as KILLED the experiment's RUNNING runs whose process, on this host, is gone (``kill -9``, a power
    cut): MLflow would show them running forever. Runs of other hosts are left alone: their processes cannot
    be seen from here."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    host, ended = socket.gethostname(), []
    for run in client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'"):
        owner_host, _, pid = run.data.tags.get(PROCESS_TAG, "").rpartition(":")
        if owner_host == host and pid.isdigit() and not _process_alive(int(pid)):
            client.set_terminated(run.info.run_id, status="KILLED")
            ended.append(run.info.run_id)
            logger.warning(
                "MLflow run %s was left RUNNING by process %s, which is gone: ended as KILLED", run.info.run_id, pid
            )
    return ended


_UNFINISHED_RUNS: set[str] = set()  # runs this process started or continued and has not completed


def end_as_killed_at_exit(run_id: str) -> None:
    """If the process exits before ``completed(run_id)`` (Ctrl-C, SIGTERM), end the run as KILLED, not FINISHED
    (MLflow's own exit handler would say FINISHED). Registered after MLflow's handler, so it runs first."""
    if not _UNFINISHED_RUNS:
        atexit.register(_end_unfinished_runs)
    _UNFINISHED_RUNS.add(run_id)


def completed(run_id: str) -> None:
    _UNFINISHED_RUNS.discard(run_id)


def _end_unfinished_runs() -> None:
    # The run can be on MLflow's stack more than once (kedro-mlflow's nested runs): end every entry.
    while (active := mlflow.active_run()) is not None and active.info.run_id in _UNFINISHED_RUNS:
        mlflow.end_run(status="KILLED")


def active_run_id() -> str | None:
    active = mlflow.active_run()
    return active.info.run_id if active is not None else None


def tag_alert(key: str, message: str) -> None:
    """A health warning from training, kept as the run tag ``health.<key>``."""
    set_tags({f"health.{key}": message})


@contextmanager
def environment_set(**variables: str) -> Iterator[None]:
    """Set environment variables while inside (MLflow reads its settings from them at each call), then restore."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def http_limits(timeout_s: int, max_retries: int) -> dict[str, str]:
    """MLflow's HTTP client settings for these limits: by default it waits 120 s per request and retries
    7 times with exponential backoff, minutes of silence against a dead server."""
    return {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(max_retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    }


def bounded_http(timeout_s: int, max_retries: int) -> AbstractContextManager[None]:
    """Bound MLflow's HTTP client while inside (``http_limits``)."""
    return environment_set(**http_limits(timeout_s, max_retries))


class TrackingUnreachable(UserError):
    """The tracking server does not answer; nothing was done."""


def bound_tracking_requests(timeout_s: int, max_retries: int) -> None:
    """Bound every request this process makes to the tracking server (``http_limits``), unless the environment
    already sets them."""
    for name, value in http_limits(timeout_s, max_retries).items():
        os.environ.setdefault(name, value)


def create_local_store(tracking_uri: str) -> None:
    """Create a SQLite store's tables under a lock beside the database file.

    MLflow migrates a new database on first use; two first runs doing it at once fail ("duplicate column
    name", alembic errors). The first to take the lock creates the tables, the others find them made.
    """
    if not tracking_uri.startswith("sqlite:///"):
        return
    database = Path(tracking_uri.removeprefix("sqlite:///")).absolute()
    database.parent.mkdir(parents=True, exist_ok=True)
    with (database.parent / f"{database.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)  # as kedro-mlflow will open it


def check_tracking_server(tracking_uri: str) -> None:
    """Fail before any work when a tracking server (an http(s) URI) does not answer; local stores need no check."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    timeout_s = int(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "10"))
    try:
        with bounded_http(timeout_s, max_retries=1):  # a dead server is known in seconds, a blip is retried once
            MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)
    except (MlflowException, OSError) as err:
        reason = str(getattr(err, "message", err)).splitlines()[0][:300]
        raise TrackingUnreachable(
            f"the MLflow tracking server {tracking_uri} does not answer ({reason}). Check that it runs: "
            f"curl {tracking_uri.rstrip('/')}/health; or log to the project's local store instead: unset "
            "MLFLOW_TRACKING_URI (sqlite:///mlflow.db)"
        ) from None


def quiet_artifact_transfers() -> AbstractContextManager[None]:
    """No progress bars for MLflow's artifact transfers while inside: a model folder of a few MB takes no time."""
    return environment_set(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")


def select_run(
    experiment_name: str,
    logged_params: dict[str, str],
    *,
    interrupted: tuple[CheckpointRecord, dict[str, Any]] | None = None,
    trained_in: str | None = None,
) -> Run | None:
    """The run a pipeline logs into instead of a new one, or None for a new one.

    ``interrupted``: an unfinished checkpoint of the training this pipeline runs, with this run's
    trajectory; resuming it continues its run. ``trained_in``: the run that trained the model this
    pipeline evaluates; the evaluation continues it (see ``run_for_earlier_model``).
    ``logged_params`` are the params this pipeline logs (flattened, as strings).
    """
    if interrupted is not None:
        return resumable_run(*interrupted, logged_params)
    if trained_in is not None:
        return run_for_earlier_model(trained_in, experiment_name, logged_params)
    return None


def resumable_run(record: CheckpointRecord, trajectory: dict[str, Any], logged_params: dict[str, str]) -> Run | None:
    """The MLflow run of this very training left unfinished, if it can take this run's parameters.

    That is the run of an unfinished checkpoint (stopped while training), or the KILLED run of a finished
    one (stopped in a later stage: evaluation, registration, promotion), which continues from the trained
    networks. MLflow refuses to change a logged parameter, so a rerun whose parameters differ (say a
    different ``training.log_every_steps``) resumes training from the checkpoint but logs to a new run.
    """
    if not record.tracking_run_id or record.trajectory != trajectory:
        return None
    run = find_run(record.tracking_run_id)
    if record.completed and (run is None or run.info.status != "KILLED"):
        return None  # a finished run: the next one trains anew
    if run is None:
        logger.warning(
            "The checkpoint's MLflow run %s is not in this tracking store; starting a new run", record.tracking_run_id
        )
        return None
    changed = changed_params(run, logged_params)
    if changed:
        logger.warning(
            "Training resumes into a new MLflow run: parameters %s differ from run %s", sorted(changed), run.info.run_id
        )
        return None
    if record.completed:
        logger.info("MLflow run %s was stopped after training: it continues from the trained networks", run.info.run_id)
    else:
        logger.info("Resuming the interrupted training run: MLflow run %s continues", run.info.run_id)
    return run


def run_for_earlier_model(trained_in: str, experiment_name: str, logged_params: dict[str, str]) -> Run:
    """The run an evaluation of an earlier-trained model logs into (created when needed).

    That is the training run itself, unless MLflow cannot take this evaluation there: when the run is
    not in this tracking store and experiment, a new run tagged with its id; when a parameter differs
    from the value the run already holds (MLflow never changes a logged param), a child run of it.
    """
    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    training_run = find_run(trained_in)
    if training_run is None or training_run.info.experiment_id != experiment.experiment_id:
        logger.warning(
            "The model was trained in MLflow run %s, which experiment %r of the tracking store %s does not hold: "
            "logging into a new run tagged training_run_id=%s. Point MLFLOW_TRACKING_URI (and the experiment "
            "in mlflow.yml) at where the model was trained to keep one run per model.",
            trained_in,
            experiment_name,
            mlflow.get_tracking_uri(),
            trained_in,
        )
        return client.create_run(experiment.experiment_id, tags={"training_run_id": trained_in})
    changed = changed_params(training_run, logged_params)
    if changed:
        listed = ", ".join(f"{key}: {old} -> {new}" for key, (old, new) in sorted(changed.items()))
        logger.warning(
            "Parameters changed since run %s logged them (%s); MLflow never changes a logged parameter, so "
            "this evaluation goes into a child run of it.",
            trained_in,
            listed,
        )
        return client.create_run(
            experiment.experiment_id,
            tags={MLFLOW_PARENT_RUN_ID: trained_in, "training_run_id": trained_in},
            run_name=f"{training_run.info.run_name}-reevaluation",
        )
    return training_run


def logged_form(params: dict[str, Any]) -> dict[str, str]:
    """Parameter sections as MLflow holds them once logged: flattened to dotted keys, values as strings."""
    return {key: str(value) for key, value in flatten_params(params).items()}


def log_metrics(metrics: dict[str, float]) -> None:
    if mlflow.active_run() is not None:
        mlflow.log_metrics(metrics)


def log_params(params: dict[str, Any]) -> None:
    """Log params as kedro-mlflow does: a value too long for an MLflow param becomes a tag."""
    if mlflow.active_run() is None:
        return
    values = {key: str(value) for key, value in params.items()}
    mlflow.log_params({key: value for key, value in values.items() if len(value) <= MAX_PARAM_VAL_LENGTH})
    mlflow.set_tags({key: value for key, value in values.items() if len(value) > MAX_PARAM_VAL_LENGTH})


def set_tags(tags: dict[str, Any]) -> None:
    """Set the tags whose value is known; ``None`` values are left out rather than logged as "None"."""
    if mlflow.active_run() is not None:
        mlflow.set_tags({key: str(value) for key, value in tags.items() if value is not None})


def active_run_record() -> dict[str, str]:
    """The run logging right now, saved beside the model so that later stages can log into it.

    Empty when no run is active (a bare runner, or tracking switched off for the pipeline).
    """
    run = mlflow.active_run()
    if run is None:
        return {}
    return {"run_id": run.info.run_id, "run_name": run.info.run_name, "experiment_id": run.info.experiment_id}


def find_run(run_id: str) -> Run | None:
    """The run with this id in the current tracking store, or None if the store lacks it or it was deleted."""
    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException:
        return None
    return None if run.info.lifecycle_stage == LifecycleStage.DELETED else run


def changed_params(run: Run, params: dict[str, str]) -> dict[str, tuple[str, str]]:
    """``{key: (logged, new)}`` for params the run already holds with another value (MLflow refuses to change them)."""
    logged = run.data.params
    return {key: (logged[key], value) for key, value in params.items() if key in logged and logged[key] != value}


@contextmanager
def system_metrics_logged(sampling_interval_s: float) -> Iterator[bool]:
    """Log CPU, memory, disk, network and (with nvidia-ml-py) GPU use as ``system/*`` metrics while inside.

    Yields whether it is logging: it needs an active run, psutil, and a non-zero interval.
    """
    run = mlflow.active_run()
    if run is None or sampling_interval_s <= 0 or importlib.util.find_spec("psutil") is None:
        yield False
        return
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run.info.run_id, sampling_interval=sampling_interval_s)
    monitor.start()
    try:
        yield True
    finally:
        monitor.finish()


IMAGE_COMMIT_VARIABLE = "GAN_PIPELINE_GIT_COMMIT"  # set by the Dockerfile: an image holds no .git
# Set by DVC for the commands of `dvc exp run`: the experiment's name and the commit it branches from.
DVC_EXPERIMENT_VARIABLES = {"dvc.experiment": "DVC_EXP_NAME", "dvc.baseline_rev": "DVC_EXP_BASELINE_REV"}
DESCRIPTION_TAG = "mlflow.note.content"  # the run's Description in the MLflow UI


def run_name(configured: dict[str, Any]) -> str:
    """A name a person recognises in the runs table: the DVC experiment's, then the dataset, network and length
    (``digits-12ep``, ``stacked_mnist-dcgan28-6ep``)."""
    experiment = os.environ.get(DVC_EXPERIMENT_VARIABLES["dvc.experiment"])
    training, dataset = configured.get("training", {}), configured.get("data_ingestion", {}).get("dataset")
    preset = training.get("preset")  # "auto": the dataset's own network, which the dataset already names
    summary = "-".join(
        str(part) for part in (dataset, preset if preset != "auto" else None, f"{training.get('epochs')}ep") if part
    )
    return f"{experiment} ({summary})" if experiment else summary


def dvc_experiment_tags() -> dict[str, str]:
    """``dvc.experiment`` and ``dvc.baseline_rev`` when DVC runs this as part of an experiment, else nothing."""
    return {tag: os.environ[variable] for tag, variable in DVC_EXPERIMENT_VARIABLES.items() if os.environ.get(variable)}


def run_description(tags: dict[str, str], command: str) -> str:
    """The run's Description: how it was started, on which code, and how to get its workspace back."""
    experiment, baseline = tags.get("dvc.experiment"), tags.get("dvc.baseline_rev", "")
    commit = tags.get("git_commit", "")
    lines = [f"Started by `{command}`" + (f" at commit {commit[:12]}" if commit else "") + "."]
    if tags.get("git_dirty") == "true":
        changes = " (the experiment's parameters)" if experiment else ""
        lines.append(f"The work tree had uncommitted changes{changes}.")
    if experiment:
        lines.append(
            f"DVC experiment `{experiment}` on baseline {baseline[:12]}: `dvc exp apply {experiment}` restores its "
            "workspace, `dvc exp show` lists it beside the others."
        )
    return "\n\n".join(lines)


def git_state(prefix: str = "") -> dict[str, str]:
    """The commit the code ran at and whether the work tree had changes, as tags; in the project's image, the
    commit it was built from (empty where neither is known)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        built_from = os.environ.get(IMAGE_COMMIT_VARIABLE, "")
        return {f"{prefix}git_commit": built_from} if built_from else {}
    return {f"{prefix}git_commit": commit.strip(), f"{prefix}git_dirty": str(bool(dirty.strip())).lower()}


def tag_data_version(record: DatasetRecord, data_version: str, data_file: str) -> None:
    """Tag the run with the raw data the model is trained from: its DVC hash (``dvc pull`` restores it)
    and its dataset card (source, file checksums) as ``data.*`` tags."""
    set_tags({"data_version": data_version, "data_version_file": data_file})
    set_tags({f"data.{key}": value for key, value in record.card.items()})


def log_stage_record(params: dict[str, Any], artifacts: list[tuple[Path, str]]) -> None:
    """What a stage run on its own (a DVC stage) logged, given to this run: its params, its files as artifacts."""
    log_params(flatten_params(params))
    for path, artifact_path in artifacts:
        mlflow.log_artifact(str(path), artifact_path)


LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def ui_url(server: str, experiment_id: str, run_id: str | None = None) -> str:
    """A link into the MLflow UI that opens on the training runs: MLflow 3's UI shows an experiment in its GenAI
    view (traces) unless the link, or the user's last choice in that browser, asks for the "Model training" one."""
    page = f"/#/experiments/{experiment_id}" + (f"/runs/{run_id}" if run_id else "")
    return f"{server.rstrip('/')}{page}?workflowType=machine_learning"


def run_summary(project_path: Path, run: Run | None) -> str:
    """Where a finished run left its results, for the last lines of ``kedro run``."""
    tracking_uri = mlflow.get_tracking_uri()
    reporting = project_path / "data" / "08_reporting"
    lines = [
        "Results:",
        f"  metrics      {reporting / 'metrics.json'}",
        f"  figures      {reporting}/*.png",
        f"  models       {project_path / 'data' / '06_models'}",
        f"  MLflow store {tracking_uri}",
    ]
    if run is not None:
        lines.append(f"  MLflow run   {run.info.run_name} ({run.info.run_id}, experiment {run.info.experiment_id})")
    served = tracking_uri.startswith(("http://", "https://"))
    if run is not None and (served or tracking_uri.startswith("sqlite:")):
        if not served:
            lines.append(f"  open the UI: mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1, then")
        lines.append(
            f"  MLflow UI    {ui_url(tracking_uri if served else LOCAL_UI, run.info.experiment_id, run.info.run_id)}"
        )
    return "\n".join(lines)
