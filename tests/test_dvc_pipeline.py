"""dvc.yaml against the catalog and the Kedro pipelines: each fact has one home; these tests keep the copies in step."""

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml

from gan_pipeline.pipeline_registry import STAGES as STAGE_ORDER
from gan_pipeline.pipeline_registry import register_pipelines

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DVC_YAML = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())
CATALOG = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "catalog.yml").read_text())
STAGES: dict[str, dict[str, Any]] = DVC_YAML["stages"]
PIPELINES = {name: pipeline for name, pipeline in register_pipelines().items() if name != "__default__"}
# What changes what a run prints or monitors, not what it writes: a DVC param would rerun the stage for nothing.
NOT_SHAPING_OUTPUTS = {
    "training.progress_bar",
    "training.system_metrics_interval_s",
    "training.health.discriminator_win_score",
    "training.health.discriminator_win_steps",
    "training.checkpoint.directory",
    "training.checkpoint.every_epochs",
    "training.checkpoint.keep",
    "training.resume",
    "training.distributed_backend",
    "evaluation.progress_bar",
}
# Package markers holding no code that shapes outputs (a docstring, the version string).
CODE_WITHOUT_EFFECT = {
    "src/gan_pipeline/__init__.py",
    "src/gan_pipeline/pipelines/__init__.py",
    "src/gan_pipeline/config/__init__.py",
}


def catalog_path(entry: dict[str, Any]) -> str | None:
    """The file a catalog entry reads and writes, looking through wrappers such as MlflowArtifactDataset."""
    return entry.get("filepath") or (entry.get("dataset") or {}).get("filepath")


CATALOG_PATHS = {name: catalog_path(entry) for name, entry in CATALOG.items() if catalog_path(entry)}


def paths(entries: list[Any]) -> list[str]:
    """Paths of a dvc.yaml list whose items are either ``path`` or ``{path: options}``."""
    return [entry if isinstance(entry, str) else next(iter(entry)) for entry in entries]


def stage_outputs(stage: dict[str, Any]) -> set[str]:
    return set(paths(stage.get("outs", []))) | set(paths(stage.get("metrics", []))) | set(paths(stage.get("plots", [])))


def plot_files() -> set[str]:
    files = set()
    for plot in DVC_YAML["plots"]:
        name, options = (plot, None) if isinstance(plot, str) else next(iter(plot.items()))
        files |= set((options or {}).get("y", {name: None}))
    return files


def leaves(values: dict[str, Any], prefix: str) -> set[str]:
    """Dotted keys of a parameter section; an option bag that is empty counts as one key."""
    keys = set()
    for key, value in values.items():
        name = f"{prefix}.{key}"
        keys |= leaves(value, name) if isinstance(value, dict) and value else {name}
    return keys


def covers(dep: str, path: str) -> bool:
    return path == dep or path.startswith(f"{dep}/")


def module_file(module: str) -> Path | None:
    base = PROJECT_ROOT / "src" / Path(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def imported_code(module: str) -> set[str]:
    """Project source files that importing ``module`` runs: module-level imports, followed transitively."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        parts = todo.pop().split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            path = module_file(".".join(parts[:depth]))
            if path is None or path in seen:
                continue
            seen.add(path)
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.Import):
                    todo += [alias.name for alias in node.names if alias.name.startswith("gan_pipeline")]
                elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gan_pipeline"):
                    todo += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return {path.relative_to(PROJECT_ROOT).as_posix() for path in seen}


def test_there_is_one_stage_per_kedro_pipeline_and_it_runs_that_pipeline():
    assert set(STAGES) == set(PIPELINES)
    assert list(STAGES) == list(STAGE_ORDER)  # the order pipeline_registry runs them in
    for name, stage in STAGES.items():
        assert stage["cmd"] == f"kedro run --pipelines {name}"


def test_every_output_metric_and_plot_is_a_catalog_path():
    declared = {path for stage in STAGES.values() for path in stage_outputs(stage)}
    declared |= set(paths(DVC_YAML.get("metrics", []))) | plot_files()
    assert declared <= set(CATALOG_PATHS.values()), declared - set(CATALOG_PATHS.values())


@pytest.mark.parametrize("name", sorted(STAGES))
def test_a_stage_outputs_exactly_the_files_its_pipeline_writes(name):
    written = {CATALOG_PATHS[dataset] for dataset in PIPELINES[name].all_outputs() if dataset in CATALOG_PATHS}
    assert stage_outputs(STAGES[name]) == written


@pytest.mark.parametrize("name", sorted(STAGES))
def test_a_stage_depends_on_the_files_its_pipeline_reads_and_on_the_catalog(name):
    stage = STAGES[name]
    read = {CATALOG_PATHS[dataset] for dataset in PIPELINES[name].inputs() if dataset in CATALOG_PATHS}
    # The judge is read back from the stage's own (persisted) output: an out, not a dep.
    assert read - stage_outputs(stage) <= set(stage["deps"])
    assert "conf/base/catalog.yml" in stage["deps"]


def test_the_evaluation_stage_depends_on_the_record_of_the_run_it_logs_into():
    assert CATALOG_PATHS["training_run"] in STAGES["evaluation"]["deps"]
    assert CATALOG_PATHS["training_run"] in stage_outputs(STAGES["training"])


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_parameter_that_shapes_a_stage_is_a_dvc_param_of_it(name):
    params_file = f"conf/base/parameters_{name}.yml"
    ((listed_file, listed),) = (next(iter(entry.items())) for entry in STAGES[name]["params"])
    assert listed_file == params_file
    assert {section for node in PIPELINES[name].nodes for section in node.inputs if section.startswith("params:")} == {
        f"params:{name}"
    }
    section = yaml.safe_load((PROJECT_ROOT / params_file).read_text())[name]
    keys = leaves(section, name) - NOT_SHAPING_OUTPUTS
    covered = {key for key in keys if any(key == entry or key.startswith(f"{entry}.") for entry in listed)}
    assert covered == keys, f"not DVC params of {name}: {sorted(keys - covered)}"
    assert not set(listed) & NOT_SHAPING_OUTPUTS
    parts = [key.split(".") for key in keys]
    sections = {".".join(key[:depth]) for key in parts for depth in range(2, len(key))}  # e.g. evaluation.judge
    assert set(listed) <= keys | sections, f"not in {params_file}: {sorted(set(listed) - keys - sections)}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_a_stage_depends_on_all_the_code_its_nodes_and_datasets_run(name):
    deps = STAGES[name]["deps"]
    code = imported_code(f"gan_pipeline.pipelines.{name}")
    dataset_modules = {entry["type"].rsplit(".", 1)[0] for entry in CATALOG.values()} | {
        (entry.get("dataset") or {}).get("type", "").rsplit(".", 1)[0] for entry in CATALOG.values()
    }
    for module in sorted(module for module in dataset_modules if module.startswith("gan_pipeline")):
        code |= imported_code(module)
    uncovered = {path for path in code - CODE_WITHOUT_EFFECT if not any(covers(dep, path) for dep in deps)}
    assert not uncovered, f"stage {name} runs code DVC does not watch: {sorted(uncovered)}"


def test_the_loss_plot_draws_both_losses_against_the_step():
    (losses,) = (plot["Losses"] for plot in DVC_YAML["plots"] if isinstance(plot, dict) and "Losses" in plot)
    assert losses["x"] == "step"
    assert losses["y"] == {CATALOG_PATHS["loss_history"]: ["d_loss", "g_loss"]}
    sample_grids = {CATALOG_PATHS["training_progress"], CATALOG_PATHS["evaluation_samples"]}
    assert sample_grids <= set(paths(DVC_YAML["plots"]))


def test_the_metrics_file_is_the_evaluation_stage_metric():
    assert paths(STAGES["evaluation"]["metrics"]) == [CATALOG_PATHS["metrics"]]


def test_no_dvc_output_is_versioned_by_kedro():
    """Kedro's `versioned: true` writes timestamped folders under the path, which DVC cannot track."""
    outputs = {path for stage in STAGES.values() for path in stage_outputs(stage)}
    for name, entry in CATALOG.items():
        if CATALOG_PATHS.get(name) in outputs:
            assert not entry.get("versioned") and not (entry.get("dataset") or {}).get("versioned"), name
