"""Project pipelines: one per stage (a DVC stage each), and ``__default__``, all of them in order."""

import importlib

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

DEFAULT = "__default__"
STAGES = ("data_ingestion", "data_processing", "training", "evaluation", "promotion")  # in run order


def register_pipelines() -> dict[str, Pipeline]:
    """Register each stage by name; ``__default__`` is all of them, run in dependency order.

    Kedro's discovery loads only the pipelines a ``kedro run --pipelines`` asks for (the others' imports
    cost start-up time); ``stage_pipelines`` has them all.
    """
    pipelines = {name: as_stage(name, found) for name, found in find_pipelines(raise_errors=True).items()}
    pipelines[DEFAULT] = sum(pipelines.values())
    return pipelines


def as_stage(name: str, pipeline: Pipeline) -> Pipeline:
    """The stage's nodes in a namespace of its name, datasets unprefixed: a deployment (kedro-airflow's
    ``--group-by namespace``) makes one task of each stage, handing data over through the catalog's files."""
    return Pipeline(pipeline, namespace=name, prefix_datasets_with_namespace=False)


def stage_pipelines() -> dict[str, Pipeline]:
    """Every stage's pipeline, also when ``kedro run --pipelines`` made Kedro load only the one it runs."""
    return {
        name: as_stage(name, importlib.import_module(f"{__package__}.pipelines.{name}").create_pipeline())
        for name in STAGES
    }


def upstream_pipelines(pipeline: Pipeline, stages: dict[str, Pipeline]) -> list[str]:
    """The stages that produce this pipeline's inputs, and theirs in turn."""
    found: list[str] = []
    wanted = set(pipeline.inputs())
    while wanted:
        dataset = wanted.pop()
        for name, candidate in stages.items():
            if name not in found and dataset in candidate.all_outputs():
                found.append(name)
                wanted |= candidate.inputs()
    return found
