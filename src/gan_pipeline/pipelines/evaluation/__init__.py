"""Score the generator with a judge classifier trained on real data; register it in MLflow."""

from gan_pipeline.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
