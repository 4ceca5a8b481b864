"""Fixtures for the dataset sources: the shared real MNIST files, a loopback HTTP mirror, IDX writers.

Nothing here reaches the internet: the mirror listens on 127.0.0.1 and serves local folders.
"""

import gzip
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_MNIST = REPO_ROOT.parent / "shared" / "datasets" / "mnist"
HANG_LIMIT_S = 10  # a hanging answer is released by then at the latest, so no test can wait forever


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that opens a connection beyond 127.0.0.1, e.g. to a default public mirror."""
    connect = socket.socket.connect

    def guarded(sock: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if sock.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1"):
            raise AssertionError(f"a dataset test tried to reach {address}; tests must stay offline")
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST files at ``<repo>/../shared/datasets/mnist`` (t10k images, t10k and train labels)."""
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST files not found at {SHARED_MNIST} (<repo root>/../shared/datasets/mnist)")
    return SHARED_MNIST


@pytest.fixture(scope="session")
def t10k_class_counts() -> list[int]:
    """Images per digit 0..9 in t10k, as the shared folder's README states them."""
    return [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="session")
def published_sha256(mnist_dir: Path) -> dict[str, str]:
    """File name -> sha256 from the shared folder's SHA256SUMS."""
    lines = (mnist_dir / "SHA256SUMS").read_text().split("\n")
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


class MirrorServer(ThreadingHTTPServer):
    """Answers ``GET /<behaviour>/<file>`` for files under ``root``; counts every request."""

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), MirrorHandler)
        self.root = root
        self.requests: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        self.release = threading.Event()  # ends every hanging answer at teardown

    def url(self, behaviour: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{behaviour}/"

    def count(self, behaviour: str) -> int:
        return sum(n for (kind, _), n in self.requests.items() if kind == behaviour)


class MirrorHandler(BaseHTTPRequestHandler):
    server: MirrorServer

    def do_GET(self) -> None:
        _, behaviour, name = self.path.split("/", 2)
        with self.server.lock:
            self.server.requests[(behaviour, name)] += 1
        BEHAVIOURS[behaviour](self, name)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def send_body(self, data: bytes, declared_length: int) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(declared_length))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def serve_file(handler: MirrorHandler, name: str) -> None:
    path = handler.server.root / name
    if not path.is_file():
        handler.send_error(404)
        return
    data = path.read_bytes()
    handler.send_body(data, len(data))


def cut_short(handler: MirrorHandler, name: str) -> None:
    """Announce the whole file, send half, close: what a dropped connection looks like."""
    data = (handler.server.root / name).read_bytes()
    handler.send_body(data[: len(data) // 2], len(data))


def stall(handler: MirrorHandler, name: str) -> None:
    """Send all but the last KiB, then stop answering: a download that a kill can interrupt."""
    data = (handler.server.root / name).read_bytes()
    handler.send_body(data[:-1024], len(data))
    handler.server.release.wait(HANG_LIMIT_S)


BEHAVIOURS: dict[str, Callable[[MirrorHandler, str], None]] = {
    "ok": serve_file,
    "404": lambda handler, name: handler.send_error(404),
    "500": lambda handler, name: handler.send_error(500),
    "hang": lambda handler, name: handler.server.release.wait(HANG_LIMIT_S),
    "cut": cut_short,
    "stall": stall,
}


@pytest.fixture
def serve() -> Iterator[Callable[[Path], MirrorServer]]:
    """Start a loopback mirror of a folder; every mirror started is shut down after the test."""
    servers: list[MirrorServer] = []

    def start(root: Path) -> MirrorServer:
        server = MirrorServer(root)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def mirror(serve: Callable[[Path], MirrorServer], mnist_dir: Path) -> MirrorServer:
    """A loopback mirror of the real MNIST files."""
    return serve(mnist_dir)


def write_idx_file(path: Path, array: np.ndarray, magic: int | None = None) -> Path:
    """Write uint8 ``array`` as a gzip'd IDX file; ``magic`` overrides the header's for bad-input tests."""
    magic = 0x00000800 | array.ndim if magic is None else magic
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0))
    return path


@pytest.fixture
def write_idx() -> Callable[..., Path]:
    return write_idx_file
