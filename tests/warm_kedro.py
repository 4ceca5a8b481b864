"""`kedro` for the tests' projects, started warm: each command a process of its own, forked from one that has
imported the heavy libraries (torch, MLflow, Kedro, pandas, ...) once.

A cold `kedro` spends 5-6 s of a 2-core machine's CPU in those imports before its first node, and the suite runs
well over a hundred (every DVC stage is one). `shim()` writes a `kedro` executable that hands its folder,
arguments, environment and standard streams to the warm server over a UNIX socket; the server forks, and the
child runs Kedro's own console entry point as the real script would, then reports its exit code. Ctrl-C and
SIGTERM sent to the shim reach the child. The project's own code is not pre-imported: each run imports it from
its copy, as a cold process does. Runs that a test kills or times use the real `kedro` script instead.
"""

import atexit
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from functools import cache
from pathlib import Path
from typing import NoReturn

KEDRO = str(Path(sys.executable).with_name("kedro"))
# What every `kedro run` of this project imports anyway; imported, not run: none of these starts a thread.
WARM_IMPORTS = (
    "torch",
    "mlflow",
    "mlflow.pyfunc",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "kedro.framework.cli",
    "kedro.framework.session",
    "kedro_mlflow.io.artifacts",
    "pandas",
    "scipy.stats",
    "sklearn.datasets",
    "sklearn.model_selection",
    "matplotlib.pyplot",
    "safetensors.torch",
    "pydantic",
)
SHIM = """#!{python} -I
import json, os, signal, socket, sys
connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
connection.connect({address!r})
request = {{"cwd": os.getcwd(), "argv": [{kedro!r}, *sys.argv[1:]], "env": dict(os.environ)}}
socket.send_fds(connection, [(json.dumps(request) + "\\n").encode()], [0, 1, 2])
replies = connection.makefile()
pid = int(replies.readline())
for stop in (signal.SIGINT, signal.SIGTERM):
    signal.signal(stop, lambda number, frame: os.kill(pid, number))
code = replies.readline()
sys.exit(int(code) if code else 1)  # no code: the run was killed
"""


@cache
def shim() -> Path:
    """The warm `kedro` executable (this process's server, started on first use and stopped at exit)."""
    folder = Path(tempfile.mkdtemp(prefix="warm-kedro-"))
    address = str(folder / "socket")
    server = subprocess.Popen([sys.executable, "-I", __file__, address], stdout=subprocess.DEVNULL)
    atexit.register(_stop, server, folder)
    while not os.path.exists(address):  # the server listens, then names its socket
        if server.poll() is not None:
            raise RuntimeError(f"the warm kedro server stopped while starting (exit code {server.returncode})")
        time.sleep(0.05)
    executable = folder / "bin" / "kedro"
    executable.parent.mkdir()
    executable.write_text(SHIM.format(python=sys.executable, address=address, kedro=KEDRO))
    executable.chmod(0o755)
    return executable


def _stop(server: subprocess.Popen, folder: Path) -> None:
    server.terminate()
    server.wait()
    shutil.rmtree(folder, ignore_errors=True)


def serve(address: str) -> NoReturn:
    """Import the warm modules, then fork a child per connection; children are reaped by the kernel."""
    for module in WARM_IMPORTS:
        importlib.import_module(module)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(f"{address}.starting")
    listener.listen()
    os.rename(f"{address}.starting", address)
    while True:
        connection, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            _run(connection)
        connection.close()


def _run(connection: socket.socket) -> NoReturn:
    """In the forked child: take over the shim's streams, folder, environment and arguments; run `kedro`."""
    code = 1
    try:
        message, streams, _, _ = socket.recv_fds(connection, 1 << 20, 3)
        while not message.endswith(b"\n"):
            message += connection.recv(1 << 20)
        request = json.loads(message)
        for number, stream in enumerate(streams):
            os.dup2(stream, number)
            os.close(stream)
        connection.sendall(f"{os.getpid()}\n".encode())
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the run's own subprocesses (git, ...) are waited for
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = request["argv"]
        _forget_the_servers_console()
        code = _kedro_main()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        connection.sendall(f"{code}\n".encode())
        os._exit(code)


def _forget_the_servers_console() -> None:
    """Rich's shared console was made by the server's imports, its width from the server's environment; the run
    makes its own from the run's (``COLUMNS``, a terminal or not), as a cold process would."""
    import rich

    rich._console = None


def _kedro_main() -> int:
    """Kedro's console script and the interpreter's exit: the code, a message or traceback, the atexit handlers."""
    from kedro.framework.cli import main

    try:
        main()
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        print(exit_.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        atexit._run_exitfuncs()
    return 0


if __name__ == "__main__":
    serve(sys.argv[1])
