"""What DVC sees: the hash it records for a file, and whether a stage's parameters are the ones it tracks."""

import hashlib
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from kedro.framework.context import KedroContext
from kedro.framework.project import settings

from gan_pipeline.config.base import flatten_params
from gan_pipeline.errors import UserError

_ABSENT = object()


class ParametersHiddenFromDvcError(UserError, ValueError):
    """A DVC stage runs with parameters DVC does not see, so it could not tell when to rerun it."""


def dvc_file_hash(path: Path) -> str:
    """The hash DVC 3 records for a file (``md5`` in dvc.lock): the MD5 of its bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parameters_hidden_from_dvc(params: dict[str, Any], base_params: dict[str, Any]) -> list[str]:
    """Keys whose value is not the one in conf/base, the only place DVC reads parameters from."""
    effective, base = flatten_params(params), flatten_params(base_params)
    keys = effective.keys() | base.keys()
    return sorted(key for key in keys if effective.get(key, _ABSENT) != base.get(key, _ABSENT))


def refuse_parameters_hidden_from_dvc(context: KedroContext, stage: str) -> None:
    """Stop a DVC stage whose parameters come from conf/local, --env or --params: DVC could not see them change."""
    loader = context.config_loader
    # The project's loader settings (its resolvers: a bare loader would switch off mlflow.yml's oc.env for
    # every loader of this process), reading the base environment alone.
    base_only = OmegaConfigLoader(
        conf_source=loader.conf_source,
        **{**settings.CONFIG_LOADER_ARGS, "base_env": loader.base_env, "default_run_env": loader.base_env},
    )
    hidden = parameters_hidden_from_dvc(loader["parameters"], base_only["parameters"])
    if hidden:
        raise ParametersHiddenFromDvcError(
            f"DVC stage {stage!r}: these parameters differ from conf/base, where DVC reads them, so DVC "
            f"would not rerun the stage when they change: {', '.join(hidden)}.\n"
            "Set them in conf/base/parameters_<pipeline>.yml, or for one experiment with "
            "`dvc exp run -S 'conf/base/parameters_<pipeline>.yml:<key>=<value>'`; move overrides out of "
            "conf/local/parameters*.yml (or run `kedro run` directly to use them)."
        )
