"""The project's ``kedro`` commands: Kedro's own ``run``, reporting a user's mistake as one message.

Kedro loads ``<package>.cli`` and lets its commands override the built-in ones; ``kedro run``,
``python -m gan_pipeline`` and ``gan-pipeline run`` all come here. The options are Kedro's.
"""

import functools
from collections.abc import Callable
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run

from gan_pipeline.errors import reported_user_errors


def reporting_user_errors(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def reported(*args: Any, **kwargs: Any) -> Any:
        with reported_user_errors():
            return callback(*args, **kwargs)

    return reported


@click.group(name="gan-pipeline")
def cli() -> None:
    """The project's commands (they override Kedro's built-in ones of the same name)."""


run = click.Command(
    name=kedro_run.name,
    params=kedro_run.params,
    callback=reporting_user_errors(kedro_run.callback),
    help=f"{kedro_run.help}\n\nA mistake in the parameters or the data is reported as one message "
    "(GAN_PIPELINE_TRACEBACK=1 adds the traceback).",
    context_settings=kedro_run.context_settings,
)
cli.add_command(run)  # `python -m gan_pipeline` finds it as `gan_pipeline.cli.run`
