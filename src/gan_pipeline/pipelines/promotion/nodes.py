"""Promotion: the gate compares the newly registered challenger with its dataset's champion."""

import logging
from typing import Any

from mlflow import MlflowClient

from gan_pipeline.config.promotion import PromotionParams
from gan_pipeline.promotion import Decision, run_gate
from gan_pipeline.registry import CHAMPION, recorded_decision
from gan_pipeline.tracking import bounded_http, set_tags

logger = logging.getLogger(__name__)


def promote_generator(registered_model: dict[str, Any], params: PromotionParams) -> dict[str, Any]:
    """Run the gate on the version the evaluation stage registered; a refusal fails the run.

    Nothing to do when no version was registered (no MLflow run, or ``evaluation.register_model: false``).
    """
    version = registered_model.get("registered_model_version")
    if not params.enabled or not version:
        reason = "promotion.enabled is false" if not params.enabled else "no model version was registered"
        logger.info("Promotion skipped: %s", reason)
        return {"outcome": "skipped", "reason": reason}
    name = registered_model["registered_model_name"]
    with bounded_http(params.request_timeout_s, params.max_retries):
        client = MlflowClient()
        earlier = recorded_decision(client, name, str(version))
        if earlier is not None:  # the run was stopped after its gate decided: the decision stands
            logger.info(
                "Promotion of %s version %s was decided before this run was stopped: %s", name, version, earlier
            )
            return {
                "outcome": earlier,
                "reason": "decided before this run was stopped and rerun",
                "registered_model_name": name,
                "challenger_version": str(version),
                "champion_version": client.get_registered_model(name).aliases.get(CHAMPION),
            }
    decision = run_gate(
        name,
        str(version),
        params.frechet_distance_margin,
        timeout_s=params.request_timeout_s,
        max_retries=params.max_retries,
        lock_wait_s=params.lock_wait_s,
    )
    with bounded_http(params.request_timeout_s, params.max_retries):
        set_tags({"promotion.decision": decision.outcome, "promotion.model_version": str(version)})
    logger.info("Promotion of %s version %s: %s", name, version, decision.reason)
    return {
        "outcome": decision.outcome,
        "reason": decision.reason,
        "registered_model_name": name,
        "challenger_version": decision.challenger.version,
        "champion_version": _champion_after(decision),
    }


def _champion_after(decision: Decision) -> str | None:
    """The version holding the champion alias after the gate: none while a first version stays challenger."""
    if decision.moves_champion:
        return decision.challenger.version
    return decision.champion.version if decision.champion else None


def refused_decision(registered_model: dict[str, Any], refusal: Exception) -> dict[str, Any]:
    """What the decision file says when the gate refused: no earlier decision may look current."""
    return {
        "outcome": "refused",
        "reason": str(refusal),
        "registered_model_name": registered_model.get("registered_model_name"),
        "challenger_version": str(registered_model.get("registered_model_version")),
        "champion_version": None,
    }
