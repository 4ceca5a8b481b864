"""Mode collapse against the papers' tables: Stacked MNIST (1,000 modes), ring8 and grid25 (PacGAN, Lin et al. 2018).

Trains and scores each benchmark, a Kedro environment (``conf/<env>``: ``stacked_mnist``, ``ring8``,
``grid25``, or a variant of one such as ``grid25_stabilised``), in-process with the pipeline's
own nodes, without MLflow, for each variant and seed, and prints one row per run, then the mean and spread
per benchmark and variant next to the published rows. Stacked MNIST is scored as PacGAN does (26,000
samples, a digit judge on each channel): modes covered of 1,000 and KL(mode histogram || uniform), with
26,000 real triplets as the floor; the 2-D mixtures on 2,500 samples: modes reached by a sample within 3
standard deviations, the share of such samples and the reverse KL. A variant is ``name=key=value,...``
on top of the environment (``base``: as shipped); ``--set`` applies to every run (e.g. where MNIST is).

    .venv/bin/python benchmarks/mode_collapse.py --benchmark ring8 grid25 --seeds 0 1 2 3 4 5 6 7 8 9 --workers 2
    .venv/bin/python benchmarks/mode_collapse.py --benchmark stacked_mnist --seeds 0 1 2 \\
        --set data_ingestion.sources.stacked_mnist.local_dir=../shared/datasets/mnist \\
        --set data_ingestion.sources.stacked_mnist.splits=[test] \\
        --variant base --variant article=training.preset=article_dcgan,training.packing=1
"""

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pandas as pd
import torch
from digits_quality import base_parameters, parse_variant, with_overrides

from gan_pipeline.config.run import validate_parameters
from gan_pipeline.pipelines.data_ingestion.nodes import ingest_dataset
from gan_pipeline.pipelines.data_processing.nodes import split_dataset
from gan_pipeline.pipelines.evaluation.nodes import evaluate_generator, fit_judge
from gan_pipeline.pipelines.training.nodes import train_model

COLUMNS = {
    "stacked_mnist": [
        "modes_covered",
        "mode_kl",
        "channel_mode_kl",
        "modes_covered_real",
        "mode_kl_real",
        "judge_val_accuracy",
    ],
    "ring8": ["modes_covered", "high_quality_share", "mode_kl"],
    "grid25": ["modes_covered", "high_quality_share", "mode_kl"],
}
# The rows to beat, as published (PacGAN: Table 2 of fjxmlzn/PacGAN for Stacked MNIST, Table 1 of the paper).
PUBLISHED = {
    "stacked_mnist": [
        ("DCGAN", {"modes_covered": 99, "mode_kl": 3.40}),
        ("Unrolled GAN", {"modes_covered": 48.7, "mode_kl": 4.32}),
        ("VEEGAN", {"modes_covered": 150, "mode_kl": 2.95}),
        ("PacDCGAN2", {"modes_covered": 1000, "mode_kl": 0.06}),
    ],
    "ring8": [("PacGAN2", {"modes_covered": 7.9, "high_quality_share": 0.956, "mode_kl": 0.07})],
    "grid25": [("PacGAN4", {"modes_covered": 24.8, "high_quality_share": 0.936, "mode_kl": 0.04})],
}
QUIET = {
    "training.progress_bar": False,
    "training.checkpoint.every_epochs": 0,
    "evaluation.progress_bar": False,
    "evaluation.register_model": False,
}


def data_for(params: Any, cache: dict[str, Any]) -> dict[str, Any]:
    """Ingested and split once per data configuration: every seed and variant trains on the same data."""
    key = json.dumps([params.data_ingestion.model_dump(mode="json"), params.data_processing.model_dump(mode="json")])
    if key not in cache:
        cache[key] = split_dataset(ingest_dataset(params.data_ingestion)["raw_dataset"], params.data_processing)
    return cache[key]


def one_run(configured: dict[str, Any], cache: dict[str, Any]) -> dict[str, float]:
    started = time.perf_counter()
    params = validate_parameters(with_overrides(configured, QUIET))
    splits = data_for(params, cache)
    trained = time.perf_counter()
    generator = train_model(splits["train_set"], params.training)["generator"]
    train_s = time.perf_counter() - trained
    judge = fit_judge(splits["train_set"], cache.get("judge"), params.evaluation)
    cache["judge"] = judge  # refitted only when the data or the judge's parameters change
    scored = evaluate_generator(generator, judge, splits["train_set"], splits["validation_set"], params.evaluation)
    return {**scored["metrics"], "train_s": train_s, "run_s": time.perf_counter() - started}


def summary(table: pd.DataFrame, benchmark: str, dataset: str) -> str:
    """Mean and std per variant over seeds, then the published rows in the same columns."""
    columns = [*COLUMNS[dataset], "train_s", "run_s"]
    rows = table[table.benchmark == benchmark].groupby("variant", sort=False)[columns]
    ours = rows.mean().map("{:.4g}".format) + " ± " + rows.std().fillna(0).map("{:.2g}".format)
    ours.insert(0, "seeds", rows.size())
    published = pd.DataFrame(
        {name: {column: f"{value:g}" for column, value in row.items()} for name, row in PUBLISHED[dataset]}
    ).T.reindex(columns=columns, fill_value="")
    published.insert(0, "seeds", "published")
    return f"\n{benchmark}: mean ± std over seeds\n" + pd.concat([ours, published]).to_string()


def run_seeds(configured: list[dict[str, Any]], workers: int) -> Iterator[dict[str, Any]]:
    """One run per seed, in order as each finishes, ``workers`` at a time: each process on its share of the
    cores (small networks run faster on one thread each than on all of them together)."""
    if workers == 1:
        cache: dict[str, Any] = {}
        yield from (one_run(params, cache) for params in configured)
        return
    threads = max(1, torch.get_num_threads() // workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, context, initializer=torch.set_num_threads, initargs=(threads,)) as pool:
        yield from pool.map(one_run, configured, [{}] * len(configured))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", nargs="+", default=sorted(COLUMNS), help="Kedro environments")
    parser.add_argument("--variant", action="append", default=[], help="name=key=value,... (default: base)")
    parser.add_argument("--set", action="append", default=[], help="key=value for every run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=1, help="runs at a time, in separate processes")
    args = parser.parse_args()
    shared: dict[str, Any] = {}
    for text in args.set:
        shared.update(parse_variant(f"set={text}")[1])
    rows, datasets = [], {}
    for benchmark in args.benchmark:
        base = base_parameters(benchmark)
        dataset = datasets[benchmark] = base["data_ingestion"]["dataset"]
        for name, overrides in map(parse_variant, args.variant or ["base"]):
            configured = [with_overrides(base, {**shared, **overrides, "training.seed": seed}) for seed in args.seeds]
            for seed, scores in zip(args.seeds, run_seeds(configured, args.workers), strict=True):
                rows.append({"benchmark": benchmark, "variant": name, "seed": seed, **scores})
                shown = ["benchmark", "variant", "seed", *COLUMNS[dataset], "train_s", "run_s"]
                line = pd.DataFrame(rows[-1:])[shown].to_string(index=False, float_format="%.4g")
                print(line, file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    for benchmark in args.benchmark:
        print(summary(table, benchmark, datasets[benchmark]))


if __name__ == "__main__":
    main()
