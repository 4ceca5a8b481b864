"""The ``gan-pipeline`` command: run the pipeline, generate from a registered model, promote, compare runs.

Not ``cli.py``, which holds the project's ``kedro`` commands. A mistake (a missing model, an unreadable
registry) is reported as one message; ``--verbose`` (or ``GAN_PIPELINE_TRACEBACK=1``) adds the traceback.
"""

import functools
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from gan_pipeline import __version__
from gan_pipeline.config.base import base_section, parameters_file, parse_params
from gan_pipeline.config.promotion import PromotionParams
from gan_pipeline.errors import TRACEBACK_VARIABLE, UserError, reported_user_errors
from gan_pipeline.gan.files import atomic_path
from gan_pipeline.gan.images import make_grid

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # the project's default store, as in conf/base/mlflow.yml


@functools.cache
def promotion_defaults() -> PromotionParams:
    """The gate's settings as the project sets them: the defaults of the options that talk to MLflow."""
    try:
        return parse_params(PromotionParams, "promotion", base_section("promotion"))
    except UserError as err:
        raise UserError(
            f"{err}. Run gan-pipeline in the project folder, or pass --timeout and --retries (and --margin to "
            "promote): their defaults are the promotion.* keys of conf/base/parameters_promotion.yml"
        ) from err


def _connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--tracking-uri`` (or $MLFLOW_TRACKING_URI), ``--timeout``, ``--retries``: for commands that talk to MLflow."""

    @click.option(
        "--tracking-uri",
        envvar="MLFLOW_TRACKING_URI",
        default=DEFAULT_TRACKING_URI,
        show_default=True,
        help="MLflow tracking server or store; $MLFLOW_TRACKING_URI when set.",
    )
    @click.option(
        "--timeout",
        "timeout_s",
        type=click.IntRange(1),
        default=lambda: promotion_defaults().request_timeout_s,
        show_default="promotion.request_timeout_s",
        help="Seconds one request to the tracking server may take.",
    )
    @click.option(
        "--retries",
        "max_retries",
        type=click.IntRange(0, 10),
        default=lambda: promotion_defaults().max_retries,
        show_default="promotion.max_retries",
        help="Retries per request before giving up.",
    )
    @functools.wraps(command)
    def with_connection(*args: Any, tracking_uri: str, timeout_s: int, max_retries: int, **kwargs: Any) -> Any:
        import mlflow

        from gan_pipeline.tracking import bounded_http

        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(tracking_uri)
        try:
            with bounded_http(timeout_s, max_retries):
                return command(*args, tracking_uri=tracking_uri, timeout_s=timeout_s, max_retries=max_retries, **kwargs)
        finally:
            mlflow.set_tracking_uri(previous)

    return with_connection


class ReportingGroup(click.Group):
    """Commands whose user errors end as one message and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        with reported_user_errors():
            return super().invoke(ctx)


def _show_tracebacks(context: click.Context, option: click.Parameter, verbose: bool) -> None:
    if verbose:
        os.environ[TRACEBACK_VARIABLE] = "1"


@click.group(cls=ReportingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gan-pipeline")
@click.option(
    "--verbose",
    is_flag=True,
    expose_value=False,
    callback=_show_tracebacks,
    help=f"Show the traceback of errors in the input or configuration too (as {TRACEBACK_VARIABLE}=1 does).",
)
def cli() -> None:
    """Reproducible, tracked GAN training: run the pipeline, use and promote its registered generators."""


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    add_help_option=False,
)
@click.pass_context
def run(context: click.Context) -> None:
    """Run the Kedro pipeline: the same options as `kedro run` (see `gan-pipeline run --help`)."""
    from gan_pipeline.__main__ import main

    main(args=context.args)


def write_png_grid(images: np.ndarray, path: Path, columns: int | None, scale: int | None) -> None:
    """Tile the images into one PNG, each pixel repeated ``scale`` times (default: cells of about 64 px)."""
    from PIL import Image

    grid = make_grid(torch.from_numpy(images), columns=columns)
    scale = scale or max(1, math.ceil(64 / images.shape[-1]))
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    with atomic_path(path) as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")


def write_npz(images: np.ndarray, path: Path, columns: int | None, scale: int | None) -> None:
    """The raw float32 images ``(N, C, H, W)`` in [-1, 1] under the key ``images``."""
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.savez_compressed(handle, images=images)


IMAGE_WRITERS: dict[str, Callable[[np.ndarray, Path, int | None, int | None], None]] = {
    ".png": write_png_grid,
    ".npz": write_npz,
}


def read_latents(path: Path) -> np.ndarray:
    """A 2-D float array from a .npy file, read without unpickling anything."""
    try:
        latents = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise click.BadParameter(f"{path}: not a .npy array of numbers ({err})", param_hint="--latents") from None
    if latents.ndim != 2 or not np.issubdtype(latents.dtype, np.floating):
        raise click.BadParameter(
            f"{path}: expected a float array of shape (N, latent_dim), got {latents.dtype} {latents.shape}",
            param_hint="--latents",
        )
    return latents


@cli.command()
@click.option(
    "--model",
    "model_uri",
    required=True,
    help="models:/<name>@champion, models:/<name>/<version>, runs:/<run id>/generator or a model folder.",
)
@click.option("--num", type=click.IntRange(1, 65_536), default=64, show_default=True, help="Images to generate.")
@click.option("--seed", type=int, default=None, help="Latent noise seed; the same seed gives the same images.")
@click.option(
    "--latents",
    "latents_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A .npy file of latent vectors, one image per row (shape N x latent_dim); replaces --num and --seed.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help=f"Output file: {' or '.join(IMAGE_WRITERS)} (a grid picture or the raw arrays).",
)
@click.option("--columns", type=click.IntRange(1), default=None, help="Grid columns (PNG); default: square.")
@click.option("--scale", type=click.IntRange(1), default=None, help="Pixel repeat factor (PNG); default: ~64 px cells.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N")
@_connection_options
def generate(
    model_uri: str,
    num: int,
    seed: int | None,
    latents_path: Path | None,
    out: Path,
    columns: int | None,
    scale: int | None,
    device: str,
    tracking_uri: str,
    **_: Any,
) -> None:
    """Generate images with a registered generator and write them as a PNG grid or an .npz file."""
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from gan_pipeline.tracking import quiet_artifact_transfers

    writer = IMAGE_WRITERS.get(out.suffix.lower())
    if writer is None:
        raise click.BadParameter(f"{out.name}: the file must end in one of {list(IMAGE_WRITERS)}", param_hint="--out")
    if latents_path is not None and seed is not None:
        raise click.BadParameter("give either --latents or --seed: the latents fix the images", param_hint="--seed")
    request = (
        {"latent": list(read_latents(latents_path))}
        if latents_path is not None
        else {"num_samples": num} | ({} if seed is None else {"seed": seed})
    )
    try:
        with quiet_artifact_transfers():
            model = mlflow.pyfunc.load_model(model_uri, model_config={"device": device})
        images = model.predict(pd.DataFrame(request) if latents_path is not None else request)
    except (MlflowException, OSError) as err:
        raise click.ClickException(f"cannot generate from {model_uri} (tracking URI {tracking_uri}): {err}") from err
    writer(images, out, columns, scale)
    click.echo(f"wrote {len(images)} images of shape {tuple(images.shape[1:])} from {model_uri} to {out}")


@cli.command()
@click.option("--model", "name", required=True, help="Registered model name, e.g. gan-generator-digits.")
@click.option("--version", default=None, help="Version to judge; default: the one holding the challenger alias.")
@click.option(
    "--margin",
    type=click.FloatRange(0, 1, max_open=True),
    default=lambda: promotion_defaults().frechet_distance_margin,
    show_default="promotion.frechet_distance_margin",
    help="Fraction by which the challenger's frechet_distance must undercut the champion's.",
)
@click.option("--force", is_flag=True, help="Move the champion alias without comparing (recorded as 'forced').")
@_connection_options
def promote(
    name: str, version: str | None, margin: float, force: bool, tracking_uri: str, timeout_s: int, max_retries: int
) -> None:
    """Run the promotion gate by hand: compare a version with the champion and move the alias if it wins."""
    from gan_pipeline.promotion import PromotionRefused, run_gate

    try:
        decision = run_gate(
            name,
            version,
            margin,
            tracking_uri=tracking_uri,
            force=force,
            timeout_s=timeout_s,
            max_retries=max_retries,
            lock_wait_s=promotion_defaults().lock_wait_s,
        )
    except PromotionRefused as err:
        raise click.ClickException(f"promotion refused, registry unchanged: {err}") from None
    click.echo(f"{name} version {decision.challenger.version}: {decision.outcome}: {decision.reason}")


@cli.command()
@click.option("--experiment", default="gan-pipeline", show_default=True, help="MLflow experiment to compare.")
@click.option("--max-runs", type=click.IntRange(1), default=20, show_default=True, help="Newest runs to show.")
@click.option("--metric", "metrics", multiple=True, help="Metric to show (repeatable); default: the key metrics.")
@click.option("--all-params", is_flag=True, help="Show every parameter, not only those that differ between runs.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the table here.")
@_connection_options
def compare(
    experiment: str, max_runs: int, metrics: tuple[str, ...], all_params: bool, csv_path: Path | None, **_: Any
) -> None:
    """Print the experiment's runs side by side: the params that differ and the key metrics."""
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from gan_pipeline.comparison import KEY_METRICS, comparison_table, for_terminal

    try:
        table = comparison_table(experiment, max_runs, metrics or KEY_METRICS, all_params)
    except (LookupError, MlflowException) as err:
        raise click.ClickException(str(err)) from None
    if table.empty:
        click.echo(f"no runs in experiment {experiment!r}")
        return
    with pd.option_context("display.float_format", "{:.4g}".format):
        click.echo(for_terminal(table).to_string(na_rep=""))
    if csv_path is not None:
        with atomic_path(csv_path) as tmp:
            table.to_csv(tmp)


def parse_override(value: str) -> tuple[str, str]:
    key, sep, setting = value.partition("=")
    section = key.split(".", 1)[0]
    if not sep or "." not in key or not parameters_file(section).exists():
        raise click.BadParameter(
            f"{value!r}: expected <pipeline>.<key>=<value> with a conf/base/parameters_<pipeline>.yml, "
            "e.g. training.epochs=5",
            param_hint="--set",
        )
    return key, setting


@cli.command()
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter for this retraining (repeatable), e.g. training.epochs=5: run as `dvc exp run -S`.",
)
@_connection_options
def retrain(overrides: tuple[str, ...], tracking_uri: str, timeout_s: int, max_retries: int) -> None:
    """Pull, reproduce what changed, gate the new generator, push, and write data/08_reporting/retrain_report.md.

    Exits 0 whether or not the challenger won; non-zero, naming the failing step, when a step fails.
    """
    from gan_pipeline.retrain import retrain as run_retraining

    parsed = dict(parse_override(value) for value in overrides)
    retraining = run_retraining(Path.cwd(), tracking_uri, parsed, timeout_s=timeout_s, max_retries=max_retries)
    click.echo(f"report: {Path.cwd() / 'data/08_reporting/retrain_report.md'}")
    if retraining.failure is not None:
        raise click.ClickException(str(retraining.failure))
    click.echo(f"retrain succeeded: {retraining.gate['decision'].get('outcome')}")
