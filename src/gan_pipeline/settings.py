"""Project settings: hooks and the config loader."""

import warnings
from importlib.metadata import entry_points

# Imported first: it configures Kedro's logging, which captures warnings; done inside the recording below,
# that capture would bypass it.
import kedro.framework.project  # noqa: F401
from omegaconf.resolvers import oc

from gan_pipeline.gan.distributed import is_main_process

# Upstream noise users cannot act on; real warnings still show. Kedro 1.7 and kedro-mlflow 2.0 call
# omegaconf 2.4's deprecated register_new_resolver; MLflow 3 warns, when kedro-mlflow's model class is
# defined (on importing its hook), that its `predict` has no type hints. MLflow forces that one through
# its own "once" filter, so it is recorded instead of shown, and any other warning is passed on.
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning)
with warnings.catch_warnings(record=True) as caught:
    from gan_pipeline.hooks import ProjectHooks, RunRecordHooks, TypedParamsMlflowHook
for warning in caught:
    if "Add type hints to the `predict` method" not in str(warning.message):
        warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)


def plugins_with_hooks(package: str = "") -> tuple[str, ...]:
    """Installed Kedro plugins that register hooks (kedro-mlflow, kedro-viz, ...), by distribution name;
    with ``package``, the one whose hooks live in that package (its name as installed may vary)."""
    points = entry_points(group="kedro.hooks")
    return tuple(sorted({p.dist.name for p in points if p.dist and p.module.startswith(package)}))


# kedro-mlflow's own hook is replaced by TypedParamsMlflowHook, which logs typed parameter sections key by
# key. Before it starts a run, ProjectHooks validates the parameters and points it at the run to continue
# (an interrupted training's, or the one that trained the model an evaluation reads); RunRecordHooks tags
# the run after. Under torchrun only the main process (RANK 0) talks to MLflow and writes files: in the
# others no plugin hook runs (kedro-mlflow would log, kedro-viz would write .viz/stats.json).
if is_main_process():
    HOOKS = (TypedParamsMlflowHook(), ProjectHooks(), RunRecordHooks())
    DISABLE_HOOKS_FOR_PLUGINS = plugins_with_hooks("kedro_mlflow.")
else:
    HOOKS = (ProjectHooks(),)
    DISABLE_HOOKS_FOR_PLUGINS = plugins_with_hooks()

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Lets mlflow.yml read MLFLOW_TRACKING_URI, so a tracking server is one variable away.
    "custom_resolvers": {"oc.env": oc.env},
    # An environment (conf/mnist, ...) overrides single keys, not whole parameter sections.
    "merge_strategy": {"parameters": "soft"},
    # kedro-mlflow's pattern, declared here so that the hooks can read the tracking URI before kedro-mlflow starts.
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]},
}
