"""``promotion``: the gate between a new challenger and its dataset's champion."""

from pydantic import Field, PositiveInt

from gan_pipeline.config.base import Params


class PromotionParams(Params):
    enabled: bool
    frechet_distance_margin: float = Field(ge=0, lt=1)
    request_timeout_s: PositiveInt
    max_retries: int = Field(ge=0, le=10)
    lock_wait_s: PositiveInt
