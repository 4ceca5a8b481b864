"""Project settings: hooks and the config loader."""

import warnings

from omegaconf.resolvers import oc

from gan_pipeline.gan.distributed import is_main_process
from gan_pipeline.hooks import ModelRunHooks, ProjectHooks, ResumeRunHooks

# Upstream deprecation noise (kedro 1.7 / kedro-mlflow 2.0 on omegaconf 2.4 and MLflow 3) that
# users cannot act on; real warnings still show.
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning)
warnings.filterwarnings("ignore", message=r".*Add type hints to the `predict` method", category=UserWarning)

# kedro-mlflow registers its own hook through its entry point. Before it starts a run, ModelRunHooks
# points it at the run that trained the model an evaluation reads, and ResumeRunHooks at the run of an
# interrupted training; ProjectHooks validates and tags (after).
HOOKS = (ModelRunHooks(), ProjectHooks(), ResumeRunHooks())
# Under torchrun only the main process (RANK 0) talks to MLflow; the others train and write nothing.
# Kedro matches the distribution name as published: kedro_mlflow 2.x, kedro-mlflow before.
DISABLE_HOOKS_FOR_PLUGINS = () if is_main_process() else ("kedro_mlflow", "kedro-mlflow")

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Lets mlflow.yml read MLFLOW_TRACKING_URI, so a tracking server is one variable away.
    "custom_resolvers": {"oc.env": oc.env},
    # An environment (conf/mnist, ...) overrides single keys, not whole parameter sections.
    "merge_strategy": {"parameters": "soft"},
}
