"""``data_processing``: how the raw data is split for training and validation."""

from pydantic import Field

from gan_pipeline.config.base import Params


class ProcessingParams(Params):
    validation_fraction: float = Field(gt=0, lt=1)
    seed: int
