"""gan-pipeline: reproducible, tracked GAN training with Kedro, DVC and MLflow."""

__version__ = "0.1.0"
