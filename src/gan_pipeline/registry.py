"""The MLflow model registry: registered generator versions, their aliases, and what they record.

Each evaluated generator is logged as a pyfunc model (with a pytorch flavour) and registered as a
new version of its dataset's model with the alias ``challenger``; its version tags say what its
metrics can be compared with. The promotion gate (``promotion.py``) reads the challenger and the
champion through ``read_candidates`` and writes its decision through ``record_decision``; the rule
itself is not here, so changing it never touches the stages that register generators.
"""

import logging
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.types.schema import Array, ColSpec, Schema, TensorSpec

from gan_pipeline.errors import UserError
from gan_pipeline.gan import networks
from gan_pipeline.gan.files import TensorFile
from gan_pipeline.gan.serialization import generator_from_tensors
from gan_pipeline.io import read_tensors, write_tensors
from gan_pipeline.tracking import quiet_artifact_transfers, this_process

logger = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
# Version tags that must match for two generators' metrics to be comparable: the same data, scored
# by the same judge (its fingerprint covers the training split and the judge's parameters), on
# as many generated samples (the Frechet distance is biased by sample count).
COMPARABLE_ON = ("dataset", "judge_fingerprint", "num_generated")
# When new data changes the judge, the challenger's evaluation scores the champion's generator again
# with the new judge, on the same data and sample count: it logs the champion's metrics under this
# prefix and names the version it scored in this tag. The gate compares those numbers instead.
RESCORED_PREFIX, RESCORED_VERSION_TAG = "champion.", "rescored_champion_version"
DESCRIPTION_LINES = 20  # a version's description keeps its latest decisions, one per line

# Two gates deciding at once on one model would both read the same champion: a gate holds a lock, the
# registered model "<name>.gate-lock", which the store creates atomically (names are unique) and the gate deletes.
GATE_LOCK_SUFFIX = ".gate-lock"
DECISION_TAG = "promotion.decision"

PYFUNC_MODEL_FILE = Path(__file__).with_name("generator_pyfunc.py")
NETWORK_MODULE = "gan_generator_network"  # the name generator_pyfunc.py imports the logged network under


class RegistryError(UserError, LookupError):
    """The registry does not hold what was asked for; nothing was changed."""


class RegistryUnreachable(RegistryError):
    """The tracking server did not answer, or answered with an error; nothing was changed."""


@dataclass(frozen=True)
class Candidate:
    """A registered model version with its run's metrics and its own tags."""

    version: str
    run_id: str
    metrics: dict[str, float]
    tags: dict[str, str]


def generator_signature(sample_shape: tuple[int, ...]) -> ModelSignature:
    """Either ``num_samples`` (+ optional ``seed``) in one row, or one ``latent`` vector per row -> samples.

    Latents are declared as doubles because JSON numbers arrive as float64, which MLflow will not narrow to
    float32; the model casts them.
    """
    inputs = Schema(
        [
            ColSpec("long", "num_samples", required=False),
            ColSpec("long", "seed", required=False),
            ColSpec(Array("double"), "latent", required=False),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *sample_shape))]))


def _pinned(*packages: str) -> list[str]:
    return [f"{name}=={version(name).split('+')[0]}" for name in packages]


class _GeneratorModel:
    """An MLflow "flavor module" that saves one model directory with two flavours of the generator.

    ``python_function``: the pyfunc logged as code (``generator_pyfunc.py``), for ``mlflow.pyfunc`` and
    ``mlflow models serve``. ``pytorch``: the network exported by ``torch.export`` (pt2, no pickle), for
    ``mlflow.pytorch.load_model``, which returns a module mapping a latent batch to samples.
    """

    @staticmethod
    def save_model(path: str, mlflow_model: Model, network: torch.nn.Module, **pyfunc_kwargs: Any) -> None:
        mlflow.pyfunc.save_model(path, mlflow_model=mlflow_model, **pyfunc_kwargs)
        arch = network.arch
        signature = ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, arch.latent_dim))]),
            outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *arch.sample_shape))]),
        )
        with tempfile.TemporaryDirectory() as tmp:
            exported = Path(tmp) / "pytorch"
            mlflow.pytorch.save_model(
                network,
                exported,
                serialization_format="pt2",
                input_example=torch.zeros(4, arch.latent_dim),
                signature=signature,
                pip_requirements=_pinned("torch"),  # the pyfunc's requirements are the model's; this skips inference
            )
            shutil.copytree(exported / "data", Path(path) / "data")
            mlflow_model.add_flavor("pytorch", **Model.load(exported).flavors["pytorch"])
        mlflow_model.save(Path(path) / "MLmodel")


def log_generator(
    generator: TensorFile, registered_model_name: str | None, version_tags: dict[str, str]
) -> dict[str, Any]:
    """Log the generator as a pyfunc model (code + safetensors weights) with a pytorch flavour into the
    active run; register it as the new challenger of ``registered_model_name`` (None: log only)."""
    if mlflow.active_run() is None:
        return {"logged": False}
    if registered_model_name:
        earlier = version_of_run(MlflowClient(), registered_model_name, mlflow.active_run().info.run_id)
        if earlier is not None:  # registered before the run was stopped: one version per run
            logger.info("Version %s of %s was registered by this run already; kept", earlier.version, earlier.name)
            return registration_record(earlier)
    network = generator_from_tensors(generator)
    with tempfile.TemporaryDirectory() as tmp:
        network_code = Path(tmp) / f"{NETWORK_MODULE}.py"
        shutil.copyfile(networks.__file__, network_code)
        weights = Path(tmp) / "generator.safetensors"
        write_tensors(generator, weights)
        with quiet_artifact_transfers():  # MLflow downloads the model back to check the input example
            info = Model.log(
                None,
                _GeneratorModel,
                name="generator",
                network=network,
                python_model=PYFUNC_MODEL_FILE,
                code_paths=[str(network_code)],
                artifacts={"weights": str(weights)},
                signature=generator_signature(network.arch.sample_shape),
                input_example={"num_samples": 4, "seed": 0},
                pip_requirements=_pinned("torch", "safetensors", "numpy", "pandas"),
                model_config={"device": "auto"},
            )
    if not registered_model_name:
        return {"logged": True, "model_uri": info.model_uri, "run_id": info.run_id}
    registered = mlflow.register_model(info.model_uri, registered_model_name, tags=version_tags)
    MlflowClient().set_registered_model_alias(registered_model_name, CHALLENGER, registered.version)
    logger.info("Registered %s version %s as %r", registered_model_name, registered.version, CHALLENGER)
    return registration_record(registered)


def registration_record(model_version: ModelVersion) -> dict[str, Any]:
    """What the evaluation stage records of the version it registered (``registered_model``)."""
    return {
        "logged": True,
        "model_uri": model_version.source,
        "run_id": model_version.run_id,
        "registered_model_name": model_version.name,
        "registered_model_version": int(model_version.version),
    }


def version_of_run(client: MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    """The version of ``name`` registered from ``run_id``, if any (a rerun of a stopped run registers none)."""
    versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return min(versions, key=lambda version: int(version.version)) if versions else None


def registered_generator(name: str, alias: str) -> tuple[str, dict[str, str], TensorFile] | None:
    """The version holding ``alias`` of ``name``: its number, its tags and its generator's weights.

    None when no run is active, the model is not registered yet, or no version holds the alias.
    """
    if mlflow.active_run() is None:
        return None
    client = MlflowClient()
    try:
        model_version = client.get_model_version_by_alias(name, alias)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise
    with tempfile.TemporaryDirectory() as tmp, quiet_artifact_transfers():
        local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{model_version.version}", dst_path=tmp))
        generator = read_tensors(local / "artifacts" / "generator.safetensors")
    return str(model_version.version), dict(model_version.tags), generator


def registry_client(tracking_uri: str | None = None, registry_uri: str | None = None) -> MlflowClient:
    """A client of the given tracking server and registry; None: the ones this process logs to."""
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)


def _read_candidate(client: MlflowClient, name: str, version: str) -> Candidate:
    model_version = client.get_model_version(name, version)
    metrics = client.get_run(model_version.run_id).data.metrics if model_version.run_id else {}
    return Candidate(str(model_version.version), model_version.run_id or "", dict(metrics), dict(model_version.tags))


def read_candidates(client: MlflowClient, name: str, version: str | None) -> tuple[Candidate, Candidate | None]:
    """The challenger (``version``, or the one holding the challenger alias) and the current champion.

    Raises ``RegistryError`` saying what is missing, ``RegistryUnreachable`` when the registry cannot be read.
    """
    try:
        aliases = client.get_registered_model(name).aliases
        version = version or aliases.get(CHALLENGER)
        if version is None:
            raise RegistryError(f"registered model {name!r} has no {CHALLENGER!r} alias; name a version to promote")
        champion = aliases.get(CHAMPION)
        return _read_candidate(client, name, str(version)), (
            _read_candidate(client, name, str(champion)) if champion is not None else None
        )
    except MlflowException as err:
        if err.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise RegistryError(
                f"{name!r} version {version or '@' + CHALLENGER} not found at {client.tracking_uri}: {err.message}. "
                f"List the registered models in the MLflow UI, or check MLFLOW_TRACKING_URI"
            ) from None
        raise unreachable(client, err) from None


def unreachable(client: MlflowClient, err: MlflowException) -> RegistryUnreachable:
    return RegistryUnreachable(
        f"could not read the model registry at {client.tracking_uri}: {err.message}. Is the tracking server "
        "running, and is MLFLOW_TRACKING_URI right?"
    )


def _append_description(client: MlflowClient, name: str, version: str, line: str) -> None:
    previous = client.get_model_version(name, version).description or ""
    lines = [*previous.splitlines(), line][-DESCRIPTION_LINES:]
    client.update_model_version(name, version, description="\n".join(lines))


@dataclass(frozen=True)
class Verdict:
    """What a gate decided about a challenger, as the registry records it."""

    outcome: str
    moves_champion: bool
    reason: str  # one sentence with the numbers, for both versions' descriptions
    tags: dict[str, str]  # recorded on the challenger version


def record_decision(
    client: MlflowClient, name: str, challenger: Candidate, champion: Candidate | None, verdict: Verdict
) -> None:
    """Move the champion alias if the verdict says so, then write the verdict on both versions."""
    decided_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    if verdict.moves_champion:
        client.set_registered_model_alias(name, CHAMPION, challenger.version)
    tags = {**verdict.tags, "promotion.decision": verdict.outcome, "promotion.decided_at": decided_at}
    for key, value in tags.items():
        client.set_model_version_tag(name, challenger.version, key, value)
    _append_description(client, name, challenger.version, f"{decided_at}: {verdict.reason}")
    if champion is not None:
        client.set_model_version_tag(
            name, champion.version, f"promotion.challenged_by_v{challenger.version}", verdict.outcome
        )
        if verdict.moves_champion:
            client.set_model_version_tag(name, champion.version, "promotion.replaced_by_version", challenger.version)
        _append_description(
            client,
            name,
            champion.version,
            f"{decided_at}: challenged by version {challenger.version}, {verdict.reason}",
        )


def recorded_decision(client: MlflowClient, name: str, version: str) -> str | None:
    """The gate's outcome recorded on ``version``, None while undecided."""
    return client.get_model_version(name, version).tags.get(DECISION_TAG)


@contextmanager
def gate_lock(client: MlflowClient, name: str, wait_s: float) -> Iterator[None]:
    """Hold the lock of ``name``'s gate while inside, waiting up to ``wait_s`` for another gate to finish.

    The lock is a registered model whose creation is atomic in any tracking store (a unique name), so it
    works across processes and machines that share a server. One older than ``wait_s`` was left by a gate
    that died (a gate decides in seconds) and is broken.
    """
    lock = f"{name}{GATE_LOCK_SUFFIX}"
    deadline = time.monotonic() + wait_s
    while not _created(client, lock):
        holder = _lock_holder(client, lock)
        if holder is not None and holder[1] > wait_s:
            logger.warning("Breaking the promotion lock %s left %.0f s ago by %s", lock, holder[1], holder[0])
            _delete_lock(client, lock)
        elif time.monotonic() > deadline:
            raise RegistryError(
                f"another promotion gate of {name!r} ({holder[0] if holder else 'unknown'}) has held the lock "
                f"{lock!r} for over {wait_s:g} s; run again when it is done, or raise promotion.lock_wait_s"
            )
        time.sleep(random.uniform(0.1, 0.5))
    try:
        yield
    finally:
        _delete_lock(client, lock)


def _created(client: MlflowClient, lock: str) -> bool:
    try:
        client.create_registered_model(
            lock, tags={"holder": this_process()}, description="Held while a promotion gate decides; see gate_lock"
        )
    except MlflowException as err:
        if err.error_code == ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            return False
        raise unreachable(client, err) from None
    return True


def _lock_holder(client: MlflowClient, lock: str) -> tuple[str, float] | None:
    """(holder, age in seconds) of the lock, None if it was just released."""
    try:
        model = client.get_registered_model(lock)
    except MlflowException as err:
        if err.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise unreachable(client, err) from None
    return model.tags.get("holder", "unknown"), time.time() - model.creation_timestamp / 1000


def _delete_lock(client: MlflowClient, lock: str) -> None:
    try:
        client.delete_registered_model(lock)
    except MlflowException as err:
        if err.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise unreachable(client, err) from None
