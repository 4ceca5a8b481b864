"""Promotion: the gate compares the newly registered challenger with its dataset's champion."""

import logging
from typing import Any

from gan_pipeline.config import PromotionParams, parse_params
from gan_pipeline.tracking import promote

logger = logging.getLogger(__name__)


def promote_generator(registered_model: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Run the gate on the version the evaluation stage registered; a refusal fails the run.

    Nothing to do when no version was registered (no MLflow run, or ``evaluation.register_model: false``).
    """
    config = parse_params(PromotionParams, "promotion", params)
    version = registered_model.get("registered_model_version")
    if not config.enabled or not version:
        reason = "promotion.enabled is false" if not config.enabled else "no model version was registered"
        logger.info("Promotion skipped: %s", reason)
        return {"outcome": "skipped", "reason": reason}
    decision = promote(
        registered_model["registered_model_name"],
        str(version),
        config.frechet_distance_margin,
        timeout_s=config.request_timeout_s,
        max_retries=config.max_retries,
    )
    logger.info("Promotion of %s version %s: %s", decision["registered_model_name"], version, decision["reason"])
    return decision
