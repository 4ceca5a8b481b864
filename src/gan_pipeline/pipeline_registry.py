"""Project pipelines: one per stage (a DVC stage each), and ``__default__``, all of them in order."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

DEFAULT = "__default__"


def register_pipelines() -> dict[str, Pipeline]:
    """Register each stage by name; ``__default__`` is all of them, run in dependency order."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines[DEFAULT] = sum(pipelines.values())
    return pipelines


def stage_pipelines() -> dict[str, Pipeline]:
    """Every stage's pipeline, also when ``kedro run --pipeline`` runs only one of them."""
    return {name: pipeline for name, pipeline in register_pipelines().items() if name != DEFAULT}


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
