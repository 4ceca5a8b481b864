"""Load a named raw dataset into arrays, with a card saying exactly what was loaded."""

from gan_pipeline.pipelines.data_ingestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
