"""Project settings: hooks and the config loader."""

import warnings
from importlib.metadata import entry_points

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


def plugins_with_hooks() -> tuple[str, ...]:
    """Installed Kedro plugins that register hooks (kedro-mlflow, kedro-viz, ...), by distribution name."""
    return tuple(sorted({point.dist.name for point in entry_points(group="kedro.hooks") if point.dist}))


# Under torchrun only the main process (RANK 0) talks to MLflow and writes files; in the others no
# plugin hook runs (kedro-mlflow would log, kedro-viz would write .viz/stats.json).
DISABLE_HOOKS_FOR_PLUGINS = () if is_main_process() else plugins_with_hooks()

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Lets mlflow.yml read MLFLOW_TRACKING_URI, so a tracking server is one variable away.
    "custom_resolvers": {"oc.env": oc.env},
    # An environment (conf/mnist, ...) overrides single keys, not whole parameter sections.
    "merge_strategy": {"parameters": "soft"},
}
