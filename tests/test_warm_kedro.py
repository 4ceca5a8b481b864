"""The suite's warm `kedro` (tests/warm_kedro.py) behaves as the real script: output, exit codes, signals."""

import re
import signal
import subprocess
import time

import pytest

from tests.kedro_project import KEDRO, copy_project, project_env
from tests.warm_kedro import shim


@pytest.mark.parametrize("args", [["--version"], ["no-such-command"], ["run", "--params", "training.epochs=-1"]])
def test_it_prints_and_exits_as_the_real_kedro(tmp_path, args):
    project = copy_project(tmp_path)
    env = {**project_env(), "COLUMNS": "200"}
    cold, warm = (
        subprocess.run([command, *args], cwd=project, env=env, capture_output=True, text=True, check=False)
        for command in (KEDRO, str(shim()))
    )
    assert warm.returncode == cold.returncode
    assert warm.stderr == cold.stderr
    assert console(warm.stdout) == console(cold.stdout)


def console(output: str) -> list[str]:
    """Lines without their log timestamps, and without Kedro's "Using ... logging configuration" line: the one
    difference, printed when the server imports Kedro."""
    lines = (re.sub(r"^\[[^]]*\]", "", line).strip() for line in output.splitlines())
    return [line for line in lines if "as logging configuration" not in line]


def test_a_signal_to_it_reaches_the_run(tmp_path):
    project = copy_project(tmp_path)
    command = [str(shim()), "run", "--params", "training.epochs=500,training.progress_bar=false"]
    log = tmp_path / "run.log"
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=project, env=project_env(), stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while "Running node: train_model" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 130  # the run's own answer to SIGTERM: stopped as KILLED
    assert "ends as KILLED" in log.read_text()
