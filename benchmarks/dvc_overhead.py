"""DVC's overhead around the Kedro run: a `dvc repro` that reruns nothing, and a full one against `kedro run` alone.

Works in a temporary copy of the project (what git would push: tracked and not-ignored files), with
tiny training parameters by default so that the overhead is not lost in training time. Each repeat
measures, side by side and from the same clean workspace:

    kedro run             the four pipelines in one process
    kedro run x4          `kedro run --pipelines <name>` for each stage in turn: exactly what the stages run
    dvc repro (full)      every stage, from an empty DVC cache
    dvc repro (no-op)     nothing changed (target: under 5 s)

and prints medians of wall time and of CPU time (user + system, of every process started): on a shared
machine CPU time moves far less with other people's load. The overhead of DVC is `dvc repro (full) -
kedro run`; the part that is DVC's own work (hashing, caching, the lock) rather than one process per
stage is `dvc repro (full) - kedro run x4`; both are medians of the differences within each repeat.

    .venv/bin/python benchmarks/dvc_overhead.py [--repeats 3] [--params tiny|repo]
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGES = ["data_ingestion", "data_processing", "training", "evaluation"]
NOOP_TARGET_SECONDS = 5.0
TINY = {
    "training": {
        "epochs": 1,
        "batch_size": 64,
        "sample_every_epochs": 1,
        "num_fixed_samples": 16,
        "progress_bar": False,
    },
    "evaluation": {"judge": {"epochs": 1}, "num_generated": 256, "register_model": False},
}


def copy_project(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (PROJECT_ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, target / name)


def use_tiny_parameters(project: Path) -> None:
    for section, values in TINY.items():
        path = project / "conf" / "base" / f"parameters_{section}.yml"
        params = yaml.safe_load(path.read_text())
        for key, value in values.items():
            params[section][key] = {**params[section][key], **value} if isinstance(value, dict) else value
        path.write_text(yaml.safe_dump(params, sort_keys=False))


def clean(project: Path) -> None:
    """No outputs, no lock, no DVC cache (run cache included): every stage has to run."""
    for path in (project / "data").rglob("*"):
        if path.is_file() and path.name != ".gitkeep":
            path.unlink()
    (project / "dvc.lock").unlink(missing_ok=True)
    shutil.rmtree(project / ".dvc" / "cache", ignore_errors=True)


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every finished descendant, waited for
    return usage.ru_utime + usage.ru_stime


def timed(project: Path, env: dict[str, str], *command: str) -> tuple[float, float]:
    """Wall and CPU seconds of one command."""
    cpu, started = children_cpu_seconds(), time.perf_counter()
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds, children_cpu_seconds() - cpu


def report(timings: dict[str, list[tuple[float, float]]], measure: int, label: str) -> None:
    def paired(minuend: str, subtrahend: str) -> float:
        pairs = zip(timings[minuend], timings[subtrahend], strict=True)
        return statistics.median(a[measure] - b[measure] for a, b in pairs)

    print(f"{label}:")
    for name, values in timings.items():
        print(f"  {name:<18} {statistics.median(v[measure] for v in values):7.2f} s")
    print(f"  overhead of DVC    {paired('dvc repro (full)', 'kedro run'):7.2f} s  (full repro - kedro run)")
    print(f"  DVC's own work     {paired('dvc repro (full)', 'kedro run x4'):7.2f} s  (full repro - kedro run x4)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--params", choices=["tiny", "repo"], default="tiny")
    args = parser.parse_args()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MLFLOW_", "DVC_", "KEDRO_"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", DVC_NO_ANALYTICS="1")
    kedro, dvc = str(BIN / "kedro"), str(BIN / "dvc")
    timings: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        copy_project(project)
        if args.params == "tiny":
            use_tiny_parameters(project)
        identity = ["-c", "user.name=benchmark", "-c", "user.email=benchmark@localhost"]
        for command in (["init", "-q"], ["add", "-A"], [*identity, "commit", "-qm", "benchmark"]):
            subprocess.run(["git", *command], cwd=project, check=True)
        timed(project, env, kedro, "run")  # warm-up: creates the MLflow store, fills OS caches
        for repeat in range(1, args.repeats + 1):
            clean(project)
            timings.setdefault("kedro run", []).append(timed(project, env, kedro, "run"))
            clean(project)
            stages = [timed(project, env, kedro, "run", "--pipelines", stage) for stage in STAGES]
            timings.setdefault("kedro run x4", []).append((sum(s[0] for s in stages), sum(s[1] for s in stages)))
            clean(project)
            timings.setdefault("dvc repro (full)", []).append(timed(project, env, dvc, "repro"))
            timings.setdefault("dvc repro (no-op)", []).append(timed(project, env, dvc, "repro"))
            latest = (f"{name} {values[-1][0]:.1f} s ({values[-1][1]:.1f} s CPU)" for name, values in timings.items())
            print(f"repeat {repeat}: " + ", ".join(latest))
    load = os.getloadavg()[0]
    print(f"\nmedians of {args.repeats} repeats ({args.params} parameters, {os.cpu_count()} CPUs, load {load:.1f}):")
    report(timings, 0, "wall time")
    report(timings, 1, "CPU time (user + system)")
    within = statistics.median(wall for wall, _ in timings["dvc repro (no-op)"]) < NOOP_TARGET_SECONDS
    print(f"no-op repro target < {NOOP_TARGET_SECONDS:g} s: {'met' if within else 'MISSED'}")
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
