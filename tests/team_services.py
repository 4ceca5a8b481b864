"""A team's services on loopback, started and stopped by the tests: PostgreSQL (Debian's package, a cluster in a
temporary folder), an S3 server (moto's server mode) and `mlflow server` on both."""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3

from tests.mlflow_server import free_port, running_mlflow_server

MOTO_SERVER = str(Path(sys.executable).with_name("moto_server"))
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
POSTGRES_USER = "postgres"  # initdb refuses to run as root: as root, the cluster runs as Debian's postgres user


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str

    def environment(self) -> dict[str, str]:
        """What a client (MLflow, DVC, boto3) needs to reach this server."""
        return {**S3_CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url, "AWS_ENDPOINT_URL": self.endpoint_url}


def postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs; Debian's `postgresql` is installed when missing (as root)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True, capture_output=True)
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
    return Path(found[-1]).parent


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", POSTGRES_USER, "--", *command] if os.geteuid() == 0 else command


@contextmanager
def running_postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust auth, loopback only); yields a URI of database `mlflow`.

    Its folder is a new one in the system's temporary folder (the postgres user must reach it), removed after.
    """
    bin_dir, root = postgres_bin(), Path(tempfile.mkdtemp(prefix="gan-pipeline-postgres-"))
    data = root / "pgdata"
    if os.geteuid() == 0:
        user = pwd.getpwnam(POSTGRES_USER)
        os.chown(root, user.pw_uid, user.pw_gid)
    port = free_port()
    subprocess.run(
        _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "mlflow", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off"  # a throwaway cluster: no fsync
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        _as_postgres([*pg_ctl, "-o", options, "-l", str(root / "pg.log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            _as_postgres([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", "mlflow"]),
            check=True,
            capture_output=True,
        )
        yield f"postgresql://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(_as_postgres([*pg_ctl, "-m", "immediate", "stop"]), check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def running_s3(root: Path, bucket: str = "team") -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 with one empty bucket; stopped (its process group) afterwards."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = (root / "s3.log").open("w")
    server = subprocess.Popen(
        [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **S3_CREDENTIALS},
        start_new_session=True,
    )
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, **_boto_credentials())
        deadline = time.monotonic() + 60
        while True:
            try:
                s3.create_bucket(Bucket=bucket)
                break
            except Exception:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: {(root / 's3.log').read_text()[-2000:]}") from None
                time.sleep(0.3)
        yield S3Server(endpoint, bucket)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    }


def s3_keys(server: S3Server, prefix: str = "") -> list[str]:
    s3 = boto3.client("s3", endpoint_url=server.endpoint_url, **_boto_credentials())
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


@contextmanager
def running_team_stack(root: Path) -> Iterator[tuple[str, S3Server]]:
    """PostgreSQL + S3 + `mlflow server` on both (artifacts proxied to S3); yields (tracking URI, S3 server)."""
    with (
        running_postgres() as database,
        running_s3(root) as s3,
        running_mlflow_server(
            root,
            backend_store_uri=database,
            artifacts_destination=f"s3://{s3.bucket}/mlflow",
            environment=s3.environment(),
        ) as tracking_uri,
    ):
        yield tracking_uri, s3
