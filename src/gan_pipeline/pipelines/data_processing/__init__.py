"""Validate raw arrays, scale them for a tanh generator, split and profile them."""

from gan_pipeline.pipelines.data_processing.pipeline import create_pipeline

__all__ = ["create_pipeline"]
