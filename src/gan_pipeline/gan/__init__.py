"""Plain-PyTorch GAN core: networks, losses, training loop, judge and metrics.

Nothing here imports Kedro, MLflow or any project module outside ``gan/``, so the core runs anywhere
torch does; callers hand it plain settings (``settings.py``) and map its errors to their own terms.
"""
