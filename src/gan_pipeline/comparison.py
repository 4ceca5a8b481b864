"""The experiment's runs side by side, as the MLflow UI's comparison view shows them, in one table."""

import mlflow
import pandas as pd
from mlflow import MlflowClient

from gan_pipeline.promotion import GATE_METRICS

# The metrics a comparison shows by default (few, to fit a terminal): the gate's, then balance, quality, diversity.
KEY_METRICS = (*GATE_METRICS, "class_kl_divergence", "precision", "recall")


def _registered_versions(client: MlflowClient, run_ids: list[str]) -> dict[str, str]:
    """Run id -> "name vN @alias ..." for runs whose model was registered."""
    if not run_ids:
        return {}
    quoted = ", ".join(f"'{run_id}'" for run_id in run_ids)
    versions = client.search_model_versions(f"run_id IN ({quoted})")
    # Search results leave aliases out; the registered model lists them.
    aliases: dict[tuple[str, str], list[str]] = {}
    for name in {version.name for version in versions}:
        for alias, number in client.get_registered_model(name).aliases.items():
            aliases.setdefault((name, str(number)), []).append(alias)
    labels: dict[str, list[str]] = {}
    for version in versions:
        tags = "".join(f" @{alias}" for alias in sorted(aliases.get((version.name, str(version.version)), [])))
        labels.setdefault(version.run_id, []).append(f"{version.name} v{version.version}{tags}")
    return {run_id: ", ".join(sorted(names)) for run_id, names in labels.items()}


def comparison_table(
    experiment: str,
    max_runs: int = 20,
    metrics: tuple[str, ...] = KEY_METRICS,
    all_params: bool = False,
) -> pd.DataFrame:
    """One row per run, newest first: when, status, registered version, the params that differ, the metrics.

    Reads the tracking server ``mlflow.get_tracking_uri()`` names. Metrics a run did not log are
    empty; params that every run shares are left out unless ``all_params``.
    """
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise LookupError(f"no experiment {experiment!r} at {mlflow.get_tracking_uri()}; experiments: {names}")
    runs = mlflow.search_runs(
        experiment_ids=[found.experiment_id], max_results=max_runs, order_by=["attribute.start_time DESC"]
    )
    if runs.empty:
        return pd.DataFrame()
    table = pd.DataFrame(
        {
            "run": runs["run_id"].str[:8],
            "name": runs.get("tags.mlflow.runName"),
            "started": pd.to_datetime(runs["start_time"]).dt.strftime("%Y-%m-%d %H:%M"),
            "status": runs["status"],
            "model": runs["run_id"].map(_registered_versions(client, runs["run_id"].tolist())).fillna(""),
        }
    )
    params = runs.filter(like="params.", axis=1)
    if not all_params:
        params = params.loc[:, params.nunique() > 1]  # runs that did not log a param (partial runs) do not count
    params.columns = [column.removeprefix("params.") for column in params.columns]
    metric_columns = {name: runs.get(f"metrics.{name}") for name in metrics}
    measured = pd.DataFrame({name: values for name, values in metric_columns.items() if values is not None})
    return pd.concat([table, params, measured], axis=1).set_index("run")


def shortest_unique_names(names: list[str]) -> list[str]:
    """Dotted names cut to their shortest distinct endings: training.epochs -> epochs, unless another ends so."""
    shortened = []
    for name in names:
        parts = name.split(".")
        for start in range(len(parts) - 1, -1, -1):
            ending = ".".join(parts[start:])
            if sum(other == ending or other.endswith(f".{ending}") for other in names) == 1:
                break
        shortened.append(ending)
    return shortened


def for_terminal(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison narrowed for a terminal: the model's name said once (no column when none was registered),
    the year and an all-FINISHED status left out, parameters by their shortest distinct names (the CSV keeps
    everything)."""
    shown = table.copy()
    if (shown["model"] == "").all():
        shown = shown.drop(columns="model")
    models = shown.get("model", pd.Series(dtype=str)).str.extract(r"^(\S+) v", expand=False).dropna().unique()
    if len(models) == 1 and "model" in shown:
        shown["model"] = shown["model"].str.replace(f"{models[0]} ", "", regex=False)
        shown = shown.rename(columns={"model": models[0]})
    shown["started"] = shown["started"].str[5:]
    if (shown["status"] == "FINISHED").all():
        shown = shown.drop(columns="status")
    dotted = [column for column in shown.columns if "." in column]  # params (training.epochs); metrics are not dotted
    return shown.rename(columns=dict(zip(dotted, shortest_unique_names(dotted), strict=True)))
