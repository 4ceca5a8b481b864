"""Move the registry's champion alias to the new generator when it beats the champion."""

from gan_pipeline.pipelines.promotion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
