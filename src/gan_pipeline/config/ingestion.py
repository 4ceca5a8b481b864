"""``data_ingestion``: which registered source to load, and each source's options."""

from typing import Any

from pydantic import field_validator

from gan_pipeline.config.base import Params, one_of, parse_params
from gan_pipeline.datasets import DATASETS, DatasetSource, SourceOptions


class IngestionParams(Params):
    dataset: str
    raw_dir: str
    sources: dict[str, dict[str, Any] | None]

    _known_dataset = field_validator("dataset")(one_of("dataset", sorted(DATASETS)))

    @property
    def source(self) -> DatasetSource:
        return DATASETS[self.dataset]

    def source_options(self) -> SourceOptions:
        """The selected source's options, validated by it; problems name ``data_ingestion.sources.<dataset>.<key>``."""
        section = f"data_ingestion.sources.{self.dataset}"
        return parse_params(self.source.options, section, self.sources.get(self.dataset) or {})
