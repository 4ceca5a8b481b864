"""The MLflow model registry: evaluated generators become challengers; the gate moves the champion.

One registered model per dataset (``evaluation.registered_model_name`` has a ``{dataset}``
placeholder), so ``models:/gan-generator-digits@champion`` is always a digits generator. The gate
also compares the ``dataset``, ``judge_fingerprint`` and ``num_generated`` tags of both versions
before their metrics. It reads everything first and writes only after deciding, so a refusal
leaves the registry as it was.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from gan_pipeline.promotion import (
    GATE_METRICS,
    RESCORED_VERSION_TAG,
    Candidate,
    Decision,
    PromotionRefused,
    decide,
)

CHAMPION, CHALLENGER = "champion", "challenger"
DESCRIPTION_LINES = 20  # a version's description keeps its latest decisions, one per line


@contextmanager
def bounded_http(timeout_s: int, max_retries: int) -> Iterator[None]:
    """Bound MLflow's HTTP client while inside: by default it waits 120 s per request and retries
    7 times with exponential backoff, minutes of silence against a dead server."""
    limits = {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(max_retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    }
    saved = {name: os.environ.get(name) for name in limits}
    os.environ.update(limits)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _read_candidate(client: MlflowClient, name: str, version: str) -> Candidate:
    model_version = client.get_model_version(name, version)
    metrics = client.get_run(model_version.run_id).data.metrics if model_version.run_id else {}
    return Candidate(str(model_version.version), model_version.run_id or "", dict(metrics), dict(model_version.tags))


def read_candidates(client: MlflowClient, name: str, version: str | None) -> tuple[Candidate, Candidate | None]:
    """The challenger (``version``, or the one holding the challenger alias) and the current champion."""
    aliases = client.get_registered_model(name).aliases
    version = version or aliases.get(CHALLENGER)
    if version is None:
        raise PromotionRefused(f"registered model {name!r} has no {CHALLENGER!r} alias; name a version to promote")
    champion = aliases.get(CHAMPION)
    return _read_candidate(client, name, str(version)), (
        _read_candidate(client, name, str(champion)) if champion is not None else None
    )


def decision_tags(decision: Decision, decided_at: str) -> dict[str, str]:
    """What the challenger version records: the outcome and the numbers it was judged on."""
    tags = {
        "promotion.decision": decision.outcome,
        "promotion.decided_at": decided_at,
        "promotion.margin": f"{decision.margin:g}",
    }
    for metric in GATE_METRICS:
        if metric in decision.challenger.metrics:
            tags[f"promotion.{metric}"] = f"{decision.challenger.metrics[metric]:.6g}"
        if decision.champion is not None and metric in decision.champion.metrics:
            tags[f"promotion.champion_{metric}"] = f"{decision.champion.metrics[metric]:.6g}"
    if decision.champion is not None:
        tags["promotion.compared_with_version"] = decision.champion.version
        if decision.challenger.tags.get(RESCORED_VERSION_TAG) == decision.champion.version:
            tags["promotion.champion_rescored"] = "true"
    if decision.required_frechet_distance is not None:
        tags["promotion.required_frechet_distance"] = f"{decision.required_frechet_distance:.6g}"
    return tags


def _append_description(client: MlflowClient, name: str, version: str, line: str) -> None:
    previous = client.get_model_version(name, version).description or ""
    lines = [*previous.splitlines(), line][-DESCRIPTION_LINES:]
    client.update_model_version(name, version, description="\n".join(lines))


def record_decision(client: MlflowClient, name: str, decision: Decision) -> None:
    """Move the champion alias if the decision says so, then write the decision on both versions."""
    decided_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    challenger, champion = decision.challenger, decision.champion
    if decision.moves_champion:
        client.set_registered_model_alias(name, CHAMPION, challenger.version)
    for key, value in decision_tags(decision, decided_at).items():
        client.set_model_version_tag(name, challenger.version, key, value)
    _append_description(client, name, challenger.version, f"{decided_at}: {decision.reason}")
    if champion is not None:
        client.set_model_version_tag(
            name, champion.version, f"promotion.challenged_by_v{challenger.version}", decision.outcome
        )
        if decision.moves_champion:
            client.set_model_version_tag(name, champion.version, "promotion.replaced_by_version", challenger.version)
        _append_description(
            client,
            name,
            champion.version,
            f"{decided_at}: challenged by version {challenger.version}, {decision.reason}",
        )


def run_gate(
    tracking_uri: str,
    name: str,
    version: str | None,
    margin: float,
    *,
    registry_uri: str | None = None,
    force: bool = False,
    timeout_s: int = 10,
    max_retries: int = 2,
) -> Decision:
    """Compare ``version`` (default: the challenger) of ``name`` with its champion and act on it.

    Raises ``PromotionRefused`` with the reason, having changed nothing, when the registry cannot
    be read or the two versions cannot be compared.
    """
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    with bounded_http(timeout_s, max_retries):
        try:
            challenger, champion = read_candidates(client, name, version)
        except MlflowException as err:
            if err.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                raise PromotionRefused(
                    f"{name!r} version {version or '@' + CHALLENGER} not found at {tracking_uri}: {err.message}"
                ) from None
            raise PromotionRefused(
                f"could not read the model registry at {tracking_uri} (waited at most {timeout_s} s per "
                f"request, {max_retries} retries): {err.message}. Is the tracking server running, and is "
                "MLFLOW_TRACKING_URI right?"
            ) from None
        decision = decide(challenger, champion, margin, force=force)
        record_decision(client, name, decision)
    return decision
