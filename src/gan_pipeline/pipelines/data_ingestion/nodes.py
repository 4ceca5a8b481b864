"""Ingestion: the dataset registry does the loading; this node records what it loaded."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gan_pipeline.config import IngestionParams, parse_params
from gan_pipeline.datasets import load_dataset
from gan_pipeline.tracking import set_tags


def ingest_dataset(params: dict[str, Any]) -> dict[str, Any]:
    """Load ``data_ingestion.dataset`` through its registered source."""
    config = parse_params(IngestionParams, "data_ingestion", params)
    raw = load_dataset(config.dataset, config.source_options, Path(config.raw_dir))
    card = {"dataset": config.dataset, **raw.card}
    set_tags({"dataset": config.dataset, **{f"data.{key}": value for key, value in card.items()}})
    return {
        "raw_dataset": {
            "samples": raw.samples,
            "labels": raw.labels,
            "__metadata__": {"dataset": config.dataset, "card": json.dumps(card)},
        },
        "dataset_card": dataset_card(card, raw.samples, raw.labels),
    }


def dataset_card(card: dict[str, Any], samples: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """One row per fact: provenance from the source, then shape and per-class counts."""
    classes, counts = np.unique(labels, return_counts=True)
    rows = [
        *card.items(),
        ("num_samples", len(samples)),
        ("sample_shape", "x".join(str(d) for d in samples.shape[1:])),
        ("dtype", str(samples.dtype)),
        *((f"count_class_{c}", int(n)) for c, n in zip(classes, counts, strict=True)),
    ]
    return pd.DataFrame(rows, columns=["field", "value"]).astype({"value": str})
