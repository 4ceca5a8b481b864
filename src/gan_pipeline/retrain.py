"""One retraining, as the scheduled CI job runs it: check the tracking server, ``dvc pull``, ``dvc repro``
(or ``dvc exp run -S`` with the schedule's parameters), read the promotion gate's decision, ``dvc push``,
and write a Markdown report. Each step runs only when every step before it succeeded, so a failure
pushes nothing; the champion alias moves only inside the promotion stage, after evaluation succeeded.
"""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from gan_pipeline.config.base import parameters_file
from gan_pipeline.gan.files import atomic_path
from gan_pipeline.registry import RESCORED_PREFIX
from gan_pipeline.tracking import ui_url

REPORT_PATH = Path("data/08_reporting/retrain_report.md")
DECISION_PATH = Path("data/08_reporting/promotion_decision.json")
REGISTERED_PATH = Path("data/08_reporting/registered_model.json")
LOCK_PATH = Path("dvc.lock")
RAW_DATA_PREFIX = "data/01_raw/"
REPORTED_METRICS = ("frechet_distance", "classes_covered", "precision", "recall", "density", "coverage")


class RetrainFailed(RuntimeError):
    """A step failed; the steps after it did not run."""

    def __init__(self, step: str, problem: str) -> None:
        super().__init__(f"retrain failed at step {step!r}: {problem}")
        self.step, self.problem = step, problem


@dataclass
class Retraining:
    """What the steps learn along the way, for the report."""

    project: Path
    tracking_uri: str
    overrides: dict[str, str]
    timeout_s: int
    max_retries: int
    lock_before: dict[str, Any] = field(default_factory=dict)
    stages_changed: list[str] = field(default_factory=list)
    pulled: str = ""
    pushed: str = ""
    gate: dict[str, Any] = field(default_factory=dict)
    failure: RetrainFailed | None = None


def parameter_file(key: str) -> str:
    """``training.epochs`` lives in ``conf/base/parameters_training.yml``, where DVC reads it."""
    return parameters_file(key.split(".", 1)[0]).as_posix()


def dvc(retraining: Retraining, step: str, *args: str) -> None:
    """Run ``dvc`` in the project (its stages call ``kedro`` from this environment); output goes to the console."""
    executable = Path(sys.executable).with_name("dvc")
    env = {**os.environ, "PATH": f"{executable.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["MLFLOW_TRACKING_URI"] = retraining.tracking_uri
    print(f"$ dvc {' '.join(args)}", flush=True)
    result = subprocess.run([str(executable), *args], cwd=retraining.project, env=env, check=False)
    if result.returncode != 0:
        raise RetrainFailed(step, f"`dvc {' '.join(args)}` exited with status {result.returncode} (output above)")


def read_lock(project: Path) -> dict[str, Any]:
    path = project / LOCK_PATH
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def check_tracking_server(retraining: Retraining) -> None:
    """Fail before any work when the tracking server cannot be read: training would fail on it later."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from gan_pipeline.tracking import bounded_http

    try:
        with bounded_http(retraining.timeout_s, retraining.max_retries):
            MlflowClient(tracking_uri=retraining.tracking_uri).search_experiments(max_results=1)
    except (MlflowException, OSError) as err:
        raise RetrainFailed(
            "tracking",
            f"cannot reach the MLflow tracking server {retraining.tracking_uri}: {err}. "
            "Start it or set MLFLOW_TRACKING_URI (or --tracking-uri) to one that runs.",
        ) from err


def pull(retraining: Retraining) -> None:
    """Fetch the outputs of the committed dvc.lock; the first run (no lock, or an empty remote) has none."""
    retraining.lock_before = read_lock(retraining.project)
    if not retraining.lock_before:
        retraining.pulled = "nothing to pull: no dvc.lock yet (first retraining)"
        return
    # --allow-missing: outputs never pushed (an empty remote) are rebuilt by the repro step instead.
    dvc(retraining, "pull", "pull", "--allow-missing")
    retraining.pulled = "outputs of the committed dvc.lock"


def reproduce(retraining: Retraining) -> None:
    """Rerun the stages whose code, data or parameters changed; the schedule's overrides as an experiment."""
    if retraining.overrides:
        settings = (f"{parameter_file(key)}:{key}={value}" for key, value in retraining.overrides.items())
        sets = [arg for setting in settings for arg in ("-S", setting)]
        dvc(retraining, "repro", "exp", "run", *sets)
    else:
        dvc(retraining, "repro", "repro")
    after = read_lock(retraining.project).get("stages", {})
    before = retraining.lock_before.get("stages", {})
    retraining.stages_changed = [stage for stage, entry in after.items() if before.get(stage) != entry]


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def read_gate(retraining: Retraining) -> None:
    """The promotion stage's decision and both versions' metrics from the registry."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from gan_pipeline.registry import CHAMPION
    from gan_pipeline.tracking import bounded_http

    decision = read_json(retraining.project / DECISION_PATH)
    registered = read_json(retraining.project / REGISTERED_PATH)
    if not decision:
        raise RetrainFailed("gate", f"{DECISION_PATH} is missing: the promotion stage did not run (see `dvc status`)")
    gate: dict[str, Any] = {"decision": decision, "registered": registered}
    name, version = registered.get("registered_model_name"), registered.get("registered_model_version")
    if name and version:
        client = MlflowClient(tracking_uri=retraining.tracking_uri)
        try:
            with bounded_http(retraining.timeout_s, retraining.max_retries):
                challenger = client.get_model_version(name, str(version))
                compared = challenger.tags.get("promotion.compared_with_version")
                gate["challenger"] = version_summary(client, name, str(version))
                gate["compared"] = version_summary(client, name, compared) if compared else None
                if compared and challenger.tags.get("promotion.champion_rescored") == "true":
                    gate["compared"]["metrics"] = rescored_metrics(client, challenger.run_id)
                    gate["compared"]["rescored"] = True
                gate["champion_version"] = client.get_registered_model(name).aliases.get(CHAMPION)
                gate["experiment_id"] = client.get_run(challenger.run_id).info.experiment_id
        except MlflowException as err:
            problem = f"cannot read {name} version {version} from {retraining.tracking_uri}: {err}"
            raise RetrainFailed("gate", problem) from err
    retraining.gate = gate


def version_summary(client: Any, name: str, version: str) -> dict[str, Any]:
    model_version = client.get_model_version(name, version)
    metrics = client.get_run(model_version.run_id).data.metrics
    return {
        "version": version,
        "run_id": model_version.run_id,
        "metrics": {key: metrics[key] for key in REPORTED_METRICS if key in metrics},
    }


def rescored_metrics(client: Any, run_id: str) -> dict[str, float]:
    """The champion's metrics as the challenger's run scored it again with the new judge and data."""
    metrics = client.get_run(run_id).data.metrics
    return {key: metrics[RESCORED_PREFIX + key] for key in REPORTED_METRICS if RESCORED_PREFIX + key in metrics}


def push(retraining: Retraining) -> None:
    dvc(retraining, "push", "push")
    retraining.pushed = "outputs of the new dvc.lock"


STEPS: dict[str, Callable[[Retraining], None]] = {
    "tracking": check_tracking_server,
    "pull": pull,
    "repro": reproduce,
    "gate": read_gate,
    "push": push,
}


def run_link(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """A link to the run in the MLflow UI when the store is a server; otherwise how to open it."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"[{run_id}]({ui_url(tracking_uri, experiment_id, run_id)})"
    return f"`{run_id}` in `{tracking_uri}` (`mlflow ui --backend-store-uri {tracking_uri}`)"


def format_metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def data_version(lock: dict[str, Any]) -> str:
    outs = lock.get("stages", {}).get("data_ingestion", {}).get("outs", [])
    raw = [out for out in outs if out["path"].startswith(RAW_DATA_PREFIX)]
    return ", ".join(f"`{out['md5']}` ({out['path']})" for out in raw) or "unknown"


def metrics_table(gate: dict[str, Any]) -> list[str]:
    challenger, compared = gate.get("challenger"), gate.get("compared")
    if challenger is None:
        return ["No model version was registered, so there is nothing to compare."]
    header = f"| metric | challenger (v{challenger['version']}) |"
    rule = "|---|---|"
    if compared is not None:
        header += f" champion before (v{compared['version']}) |"
        rule += "---|"
    rows = [header, rule]
    for key in REPORTED_METRICS:
        row = f"| `{key}` | {format_metric(challenger['metrics'].get(key))} |"
        if compared is not None:
            row += f" {format_metric(compared['metrics'].get(key))} |"
        rows.append(row)
    if compared is not None and compared.get("rescored"):
        rows += ["", f"Version {compared['version']} was scored again by this run's judge on this data, which changed."]
    return rows


def render_report(retraining: Retraining) -> str:
    lock = read_lock(retraining.project)
    status = "failed" if retraining.failure else "succeeded"
    lines = [
        f"# Retraining {status}",
        "",
        f"- when: {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC",
        f"- data version: {data_version(lock)}",
        f"- parameter overrides: {', '.join(f'`{k}={v}`' for k, v in retraining.overrides.items()) or 'none'}",
        f"- stages rerun: {', '.join(retraining.stages_changed) or 'none (nothing changed)'}",
        f"- pulled: {retraining.pulled or '-'}; pushed: {retraining.pushed or 'nothing'}",
    ]
    if retraining.failure:
        lines += ["", f"**Failed at step `{retraining.failure.step}`**: {retraining.failure.problem}"]
        lines += ["", "Nothing was pushed; the champion alias was not moved by this retraining."]
        return "\n".join(lines) + "\n"
    gate = retraining.gate
    decision, registered = gate["decision"], gate["registered"]
    lines += ["", "## Decision", ""]
    if not retraining.stages_changed:
        lines += ["Nothing changed since the last retraining: no stage reran and the registry is untouched.", ""]
        lines += ["The last decision:", ""]
    outcome = decision.get("outcome", "unknown")
    lines += [f"**{outcome}**: {decision.get('reason', '')}", ""]
    if registered.get("registered_model_name"):
        name = registered["registered_model_name"]
        lines.append(f"- model: `{name}`; champion now: version {gate.get('champion_version') or '-'}")
        challenger = gate.get("challenger")
        if challenger:
            link = run_link(retraining.tracking_uri, gate["experiment_id"], challenger["run_id"])
            lines.append(f"- challenger: version {challenger['version']}, MLflow run {link}")
        compared = gate.get("compared")
        if compared:
            link = run_link(retraining.tracking_uri, gate["experiment_id"], compared["run_id"])
            lines.append(f"- champion it was compared with: version {compared['version']}, MLflow run {link}")
    lines += ["", "## Metrics", "", *metrics_table(gate)]
    return "\n".join(lines) + "\n"


def write_report(retraining: Retraining) -> Path:
    path = retraining.project / REPORT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(render_report(retraining))
    return path


def retrain(
    project: Path, tracking_uri: str, overrides: dict[str, str], timeout_s: int = 10, max_retries: int = 2
) -> Retraining:
    """Run the steps in order, stop at the first failure, and always write the report."""
    retraining = Retraining(project, tracking_uri, overrides, timeout_s, max_retries)
    try:
        for step in STEPS.values():
            step(retraining)
    except RetrainFailed as failure:
        retraining.failure = failure
    write_report(retraining)
    return retraining
