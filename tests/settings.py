"""Settings for tests: the project's parameters with tiny overrides, and complete core settings.

Pipeline tests start from ``conf/base`` (the one source of values) and override what makes them
fast. Core tests spell their settings out in full, as any caller of the plain-PyTorch core does.
"""

from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from kedro.config import OmegaConfigLoader

from gan_pipeline.config.base import parse_params
from gan_pipeline.config.evaluation import EvaluationParams
from gan_pipeline.config.processing import ProcessingParams
from gan_pipeline.config.promotion import PromotionParams
from gan_pipeline.config.training import TrainingParams
from gan_pipeline.gan.settings import (
    HealthSettings,
    JudgeSettings,
    ScoringSettings,
    SpeedOptions,
    TrainingSettings,
)
from gan_pipeline.splits import DatasetRecord, Split, content_fingerprint

PROJECT_ROOT = Path(__file__).resolve().parents[1]

TINY_TRAINING = {
    "epochs": 2,
    "batch_size": 32,
    "log_every_steps": 5,
    "sample_every_epochs": 1,
    "num_fixed_samples": 16,
    "progress_bar": False,
    "device": "cpu",
    "checkpoint": {"every_epochs": 0},  # tests that checkpoint pass their own tmp_path directory
}
TINY_EVALUATION = {
    "judge": {"epochs": 2},
    "device": "cpu",
    "register_model": False,
    "frechet_draws": 2,
    "progress_bar": False,
}


@cache
def base_parameters() -> dict[str, Any]:
    """Every section as ``conf/base`` sets it."""
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        base_env="base",
        default_run_env="base",
        merge_strategy={"parameters": "soft"},
    )
    return loader["parameters"]


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied key by key, nested sections too (as ``--params`` does)."""
    result = dict(base)
    for key, value in overrides.items():
        both_sections = isinstance(value, dict) and isinstance(result.get(key), dict) and value
        result[key] = merged(result[key], value) if both_sections else value
    return result


def section(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    return merged(base_parameters()[name], overrides or {})


def training_params(**overrides: Any) -> TrainingParams:
    return parse_params(TrainingParams, "training", section("training", {**TINY_TRAINING, **overrides}))


def evaluation_params(**overrides: Any) -> EvaluationParams:
    return parse_params(EvaluationParams, "evaluation", section("evaluation", merged(TINY_EVALUATION, overrides)))


def processing_params(**overrides: Any) -> ProcessingParams:
    return parse_params(ProcessingParams, "data_processing", section("data_processing", overrides))


def promotion_params(**overrides: Any) -> PromotionParams:
    return parse_params(PromotionParams, "promotion", section("promotion", overrides))


TINY_SETTINGS = TrainingSettings(
    loss="non_saturating",
    gradient_penalty_weight=10.0,
    r1_gamma=0.0,
    discriminator_steps=1,
    packing=1,
    diff_augment=(),
    epochs=2,
    batch_size=32,
    fakes_per_step=32,
    generator_lr=2e-4,
    discriminator_lr=2e-4,
    lr_decay_start=1.0,
    betas=(0.5, 0.999),
    ema_decay=0.999,
    ema_warmup=0.25,
    standing_statistics_batches=200,
    seed=0,
    speed=SpeedOptions(precision="auto", channels_last="auto", compile="auto", cudnn_benchmark="auto"),
    health=HealthSettings(discriminator_win_score=0.02, discriminator_win_steps=200),
    log_every_steps=5,
    sample_every_epochs=1,
    num_fixed_samples=16,
    progress_bar=False,
)
JUDGE_SETTINGS = JudgeSettings(
    task="classes", epochs=8, batch_size=64, learning_rate=1e-3, feature_dim=64, seed=0, progress_bar=False
)
SCORING = ScoringSettings(
    confidence_threshold=0.9,
    nearest_k=5,
    precision_recall_samples=10_000,
    inception_score_splits=10,
    memorisation_samples=2000,
    seed=0,
    progress_bar=False,
)


def tiny_settings(**changes: Any) -> TrainingSettings:
    """``TINY_SETTINGS`` changed; G makes as many samples per step as the real batch unless told otherwise."""
    if "batch_size" in changes:
        changes.setdefault("fakes_per_step", changes["batch_size"])
    return replace(TINY_SETTINGS, **changes)


def split_of(samples: np.ndarray, labels: np.ndarray, dataset: str = "digits", modes: Any = None, **card: Any) -> Split:
    """A split with the record ingestion would write for these arrays."""
    record = DatasetRecord(
        dataset=dataset,
        sample_shape=tuple(samples.shape[1:]),
        class_names=tuple(str(label) for label in range(int(labels.max()) + 1)),
        source_fingerprint=content_fingerprint(samples, labels),
        card={"dataset": dataset, **card},
        modes=modes,
    )
    return Split(samples, labels, record)
