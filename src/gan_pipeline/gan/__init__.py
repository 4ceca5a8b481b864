"""Plain-PyTorch GAN core: networks, losses, training loop, judge and metrics.

Nothing here imports Kedro or MLflow, so the core runs anywhere torch does.
"""
