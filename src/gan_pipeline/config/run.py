"""Every section at once, before any work: each validated, then checked against the others and the data."""

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from gan_pipeline.config.base import PARAM_SEP, ParameterError, parse_params, unknown_name
from gan_pipeline.config.evaluation import EvaluationParams
from gan_pipeline.config.ingestion import IngestionParams
from gan_pipeline.config.processing import ProcessingParams
from gan_pipeline.config.promotion import PromotionParams
from gan_pipeline.config.training import TrainingParams
from gan_pipeline.datasets import SourceError, option_key
from gan_pipeline.gan.distributed import launched_world_size
from gan_pipeline.gan.presets import resolve_architecture
from gan_pipeline.gan.settings import SettingError
from gan_pipeline.gan.training import check_augmentations_fit, check_batch_fits, check_packing_fits


@dataclass(frozen=True)
class RunParameters:
    """The validated parameters of a run, one typed model per section."""

    data_ingestion: IngestionParams
    data_processing: ProcessingParams
    training: TrainingParams
    evaluation: EvaluationParams
    promotion: PromotionParams


SECTIONS = {field.name: field.type for field in fields(RunParameters)}  # section name -> its model


def validate_parameters(params: dict[str, Any]) -> RunParameters:
    """Parse every section, then check they fit the data; ``ParameterError`` lists every problem found."""
    unknown = sorted(set(params) - set(SECTIONS))
    problems = [f"{name}: {unknown_name('section', name, SECTIONS)}" for name in unknown]
    parsed: dict[str, Any] = {}
    for name, model in SECTIONS.items():
        try:
            parsed[name] = parse_params(model, name, params.get(name))
        except ParameterError as err:
            problems += err.problems
    if problems:
        raise ParameterError(problems)
    run = RunParameters(**parsed)
    check_fits_the_data(run)
    return run


def check_fits_the_data(run: RunParameters) -> None:
    """What the source knows before loading (sample shape, count) against the network, batch and augmentations."""
    ingestion, training = run.data_ingestion, run.training
    source, options, raw_dir = ingestion.source, ingestion.source_options(), Path(ingestion.raw_dir)
    try:
        shape, total = source.sample_shape(options, raw_dir), source.num_samples(options, raw_dir)
    except SourceError as err:
        raise ParameterError([f"data_ingestion.sources.{ingestion.dataset}: {err}"]) from err
    if shape is not None and len(shape) == 1 and run.evaluation.inception:
        raise ParameterError(
            [f"evaluation.inception: Inception-v3 scores images; {ingestion.dataset!r} holds vectors. Set it to false"]
        )
    settings = training.settings()
    try:
        if shape is not None:
            resolve_architecture(training.preset, shape, training.architecture)
            check_augmentations_fit(shape, settings)
        if total is not None:
            train_size = total - math.ceil(total * run.data_processing.validation_fraction)
            check_batch_fits(train_size, settings, launched_world_size())
        check_packing_fits(settings)
    except SettingError as err:
        fix = (
            f"; or set {option_key(ingestion.dataset, source.size_option)}"
            if err.setting == "preset" and source.size_option
            else ""
        )
        raise ParameterError(
            [f"training{PARAM_SEP}{err.setting}: {err.problem} (data_ingestion.dataset {ingestion.dataset!r}){fix}"]
        ) from err
