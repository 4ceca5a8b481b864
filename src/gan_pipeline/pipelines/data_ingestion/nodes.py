"""Ingestion: the dataset registry does the loading; this node records what it loaded."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gan_pipeline.config.ingestion import IngestionParams
from gan_pipeline.splits import CardValue, DatasetRecord, Split, content_fingerprint


def ingest_dataset(params: IngestionParams) -> dict[str, Any]:
    """Load ``data_ingestion.dataset`` through its registered source, with the record of what it is."""
    raw = params.source.load(params.source_options(), Path(params.raw_dir))
    record = DatasetRecord(
        dataset=raw.name or params.dataset,
        sample_shape=tuple(raw.samples.shape[1:]),
        class_names=raw.class_names,
        source_fingerprint=content_fingerprint(raw.samples, raw.labels),
        card={"dataset": raw.name or params.dataset, **raw.card},
        modes=raw.modes,
        channel_classes=raw.channel_classes,
    )
    return {
        "raw_dataset": Split(raw.samples, raw.labels, record),
        "dataset_card": dataset_card(record.card, raw.samples, raw.labels),
    }


def dataset_card(card: dict[str, CardValue], samples: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
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
