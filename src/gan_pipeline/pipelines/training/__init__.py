"""Train the GAN on the training split; losses stream to MLflow while it runs."""

from gan_pipeline.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
