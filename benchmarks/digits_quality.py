"""Sample quality of the default `digits` run: the issue-2 criteria, for the configured training and variants.

Runs the pipeline's own nodes (ingestion, split, training, judge, evaluation) in-process, without
MLflow, for each variant and seed, and prints one row per run: judge validation accuracy (>= 97%),
classes covered (10 of 10), KL of the class histogram (<= 0.1), the judge-space Frechet distance,
its real-vs-real floor, their ratio (<= 2) and the training time. A variant is a set of parameter
overrides on top of ``conf/base``; ``--variant base`` is the configuration as shipped.

    .venv/bin/python benchmarks/digits_quality.py --seeds 0 1 2 \\
        --variant base --variant r1=training.r1_gamma=1.0 --variant long=training.epochs=400
"""

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from kedro.config import OmegaConfigLoader

from gan_pipeline.config.run import validate_parameters
from gan_pipeline.pipelines.data_ingestion.nodes import ingest_dataset
from gan_pipeline.pipelines.data_processing.nodes import split_dataset
from gan_pipeline.pipelines.evaluation.nodes import evaluate_generator, fit_judge
from gan_pipeline.pipelines.training.nodes import train_model
from gan_pipeline.settings import CONFIG_LOADER_ARGS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["judge_val_accuracy", "classes_covered", "class_kl_divergence", "frechet_distance"]
COLUMNS += ["frechet_distance_std", "frechet_distance_real_floor", "frechet_distance_ratio"]


def base_parameters(env: str = "base") -> dict[str, Any]:
    """The project's parameters as ``kedro run --env <env>`` sees them."""
    loader = OmegaConfigLoader(conf_source=str(PROJECT_ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": env})
    return loader["parameters"]


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``name=section.key=value,section.key=value`` (values are YAML), or ``base``."""
    name, _, settings = text.partition("=")
    overrides = {}
    for setting in filter(None, re.split(r",(?=[\w.]+=)", settings)):  # commas inside [..] stay
        key, _, value = setting.partition("=")
        overrides[key] = yaml.safe_load(value)
    return name, overrides


def with_overrides(params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    params = yaml.safe_load(yaml.safe_dump(params))  # a deep copy
    for dotted, value in overrides.items():
        *path, leaf = dotted.split(".")
        node = params
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return params


def one_run(configured: dict[str, Any], judges: dict[str, Any]) -> dict[str, float]:
    quiet = {"training.progress_bar": False, "training.checkpoint.every_epochs": 0}
    params = validate_parameters(with_overrides(configured, quiet))
    raw = ingest_dataset(params.data_ingestion)["raw_dataset"]
    splits = split_dataset(raw, params.data_processing)
    started = time.perf_counter()
    generator = train_model(splits["train_set"], params.training)["generator"]
    seconds = time.perf_counter() - started
    judge = fit_judge(splits["train_set"], judges.get("last"), params.evaluation)
    judges["last"] = judge  # same data and judge parameters in every run: trained once
    metrics = evaluate_generator(generator, judge, splits["train_set"], splits["validation_set"], params.evaluation)
    return {**{key: metrics["metrics"][key] for key in COLUMNS}, "train_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", default=[], help="name=key=value,... (default: base)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    base, judges, rows = base_parameters(), {}, []
    for name, overrides in map(parse_variant, args.variant or ["base"]):
        for seed in args.seeds:
            params = with_overrides(base, {**overrides, "training.seed": seed})
            rows.append({"variant": name, "seed": seed, **one_run(params, judges)})
            print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format="%.4g"), file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format="%.4g"))
    summary = table.groupby("variant", sort=False)[["frechet_distance_ratio", "class_kl_divergence", "train_s"]]
    print("\nmedian per variant:\n" + summary.median().to_string(float_format="%.4g"))


if __name__ == "__main__":
    main()
