"""Start and stop a real `mlflow server` bound to 127.0.0.1, for tests that need the REST API."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

MLFLOW = str(Path(sys.executable).with_name("mlflow"))
STARTUP_TIMEOUT_S = 180  # two busy CPU cores can take most of a minute to start the server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running_mlflow_server(
    root: Path,
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
    environment: dict[str, str] | None = None,
) -> Iterator[str]:
    """Yield the server's URI once ``/health`` answers; stop the server (its whole process group) afterwards.

    By default its store is SQLite and its artifacts a folder, both in ``root``.
    """
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    log = (root / "server.log").open("w")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")} | (environment or {})
    command = [MLFLOW, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    store = [
        "--backend-store-uri",
        backend_store_uri or f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        artifacts_destination or str(root / "artifacts"),
    ]
    server = subprocess.Popen(
        [*command, *store],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _healthy(uri):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start; log:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield uri
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have died on its own
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@contextmanager
def served_model(model_uri: str, tracking_uri: str, workdir: Path) -> Iterator[Callable[[Any], tuple[int, Any]]]:
    """`mlflow models serve -m model_uri` on 127.0.0.1; yields ``post(body) -> (HTTP status, parsed JSON)``.

    The server is stopped (its whole process group) afterwards.
    """
    port = free_port()
    # `mlflow models serve` execs `uvicorn` by name: the virtual environment's bin/ must be on PATH.
    path = os.pathsep.join([str(Path(MLFLOW).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PATH": path}
    log = (workdir / "serve.log").open("w")
    server = subprocess.Popen(
        [MLFLOW, "models", "serve", "-m", model_uri, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def post(body: Any) -> tuple[int, Any]:
        """POST ``body`` as JSON (a str is sent as is) to /invocations."""
        data = body if isinstance(body, str) else json.dumps(body)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=data.encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as err:
            return err.code, json.load(err)

    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _healthy(f"http://127.0.0.1:{port}"):
            assert server.poll() is None and time.monotonic() < deadline, (workdir / "serve.log").read_text()
            time.sleep(1)
        yield post
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        log.close()


def served_predictions(model_uri: str, tracking_uri: str, body: dict, workdir: Path) -> np.ndarray:
    """The predictions ``mlflow models serve`` answers to one JSON ``body``."""
    with served_model(model_uri, tracking_uri, workdir) as post:
        status, answer = post(body)
    assert status == 200, answer
    return np.asarray(answer["predictions"], dtype=np.float32)
