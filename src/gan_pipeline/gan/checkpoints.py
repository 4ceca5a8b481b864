"""Training checkpoints: everything needed to continue an interrupted run exactly where it stopped.

A checkpoint is a safetensors file of tensors (weights, optimiser moments, EMA, RNG states,
fixed-noise snapshots) plus a JSON record of scalars (epoch, step, loss history, what the run was
trained on, the tracking run id). The record is written last and names its tensors file, so it is
the commit point: a crash while writing leaves the previous checkpoint in force.
"""

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gan_pipeline.gan.files import atomic_path
from gan_pipeline.gan.networks import AnyArchitecture

logger = logging.getLogger(__name__)

RECORD_NAME = "last.json"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used as it is; the message says why and what to do."""


@dataclass(frozen=True)
class SettingDifference:
    setting: str
    in_checkpoint: Any
    now: Any


class CheckpointMismatchError(CheckpointError):
    """An unfinished checkpoint of a different run: continuing it would mix two trainings."""

    def __init__(
        self, directory: Path, record: "CheckpointRecord", differences: list[SettingDifference], problems: list[str]
    ) -> None:
        self.directory, self.record, self.differences, self.problems = directory, record, differences, problems
        super().__init__(self.describe())

    def describe(self, name_of: Callable[[str], str] = str) -> str:
        """The refusal, each differing setting named by ``name_of`` (the caller's name for it)."""
        lines = [
            f"{name_of(d.setting)}: {d.in_checkpoint!r} in the checkpoint, {d.now!r} now" for d in self.differences
        ]
        return (
            f"found an unfinished checkpoint in {self.directory} (epoch {self.record.epoch}, step {self.record.step}) "
            "of a different run:\n  "
            + "\n  ".join([*lines, *self.problems])
            + "\nRestore those settings to continue it, or start a new run without resuming (its checkpoints "
            "replace these)."
        )


@dataclass(frozen=True)
class CheckpointRecord:
    tensors_file: str  # beside the record
    epoch: int  # epochs completed
    step: int  # steps completed
    completed: bool  # the run finished: nothing to resume
    trajectory: dict[str, Any]  # the caller's settings that determine the run (Checkpointing.trajectory)
    data_fingerprint: str
    tracking_run_id: str | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    retained: list[str] = field(default_factory=list)  # tensors files kept, oldest first
    # The networks' resolved architecture: with `preset: auto` a preset can change between versions of the
    # code while the parameters stay the same. None in records written before it was recorded.
    network: dict[str, Any] | None = None


def data_fingerprint(samples: np.ndarray) -> str:
    """sha256 of the training set's shape, dtype and bytes."""
    samples = np.ascontiguousarray(samples)
    digest = hashlib.sha256(f"{samples.shape}{samples.dtype}".encode())
    digest.update(memoryview(samples).cast("B"))
    return digest.hexdigest()


def network_settings(arch: AnyArchitecture) -> dict[str, Any]:
    """An architecture as a checkpoint record stores it (JSON types), comparable with a loaded record's."""
    return json.loads(json.dumps(arch.to_dict()))


def settings_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[SettingDifference]:
    return [
        SettingDifference(key, saved.get(key), current.get(key))
        for key in sorted(set(saved) | set(current))
        if saved.get(key) != current.get(key)
    ]


class CheckpointStore:
    """Checkpoints of one training run in ``directory``; keeps the newest ``keep`` tensors files."""

    def __init__(self, directory: str | Path, keep: int = 2) -> None:
        self.directory = Path(directory)
        self.keep = keep

    @property
    def record_path(self) -> Path:
        return self.directory / RECORD_NAME

    def latest(self) -> CheckpointRecord | None:
        if not self.record_path.is_file():
            return None
        try:
            return CheckpointRecord(**json.loads(self.record_path.read_text()))
        except (json.JSONDecodeError, TypeError) as err:
            raise CheckpointError(
                f"{self.record_path} is not a checkpoint record ({err}); delete {self.directory} to start "
                "over, or start a new run without resuming"
            ) from err

    def resumable(
        self,
        trajectory: dict[str, Any],
        fingerprint: str,
        network: dict[str, Any],
        tracking_run_id: str | None = None,
    ) -> CheckpointRecord | None:
        """The unfinished checkpoint of this very run, None when there is nothing to resume.

        A finished checkpoint is taken up only by the tracking run that wrote it (``tracking_run_id``):
        that run was stopped after training, in a later stage, and continues from the trained networks.
        An unfinished checkpoint of a *different* run is an error rather than silently replaced:
        it may hold hours of work.
        """
        record = self.latest()
        if record is None:
            return None
        if record.completed and (tracking_run_id is None or record.tracking_run_id != tracking_run_id):
            return None
        differences = settings_differences(record.trajectory, trajectory)
        problems = []
        if record.network is None:
            problems.append("the checkpoint does not record its network (an earlier version of gan-pipeline wrote it)")
        else:
            problems += [
                f"network {d.setting}: {d.in_checkpoint!r} in the checkpoint, {d.now!r} now"
                for d in settings_differences(record.network, network)
            ]
        if record.data_fingerprint != fingerprint:
            problems.append("the training set differs from the one the checkpoint was trained on")
        if differences or problems:
            raise CheckpointMismatchError(self.directory, record, differences, problems)
        return record

    def load(self, record: CheckpointRecord) -> dict[str, torch.Tensor]:
        path = self.directory / record.tensors_file
        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError) as err:
            raise CheckpointError(
                f"{self.record_path} points to {path}, which cannot be read ({err}). On several nodes the "
                "checkpoint directory must be shared storage; otherwise delete it to start over, or start a new "
                "run without resuming"
            ) from err

    def save(self, record: CheckpointRecord, tensors: dict[str, torch.Tensor]) -> CheckpointRecord:
        """Write the tensors, then the record that commits them; prune old tensors files."""
        name = f"checkpoint-epoch{record.epoch:05d}.safetensors"
        with atomic_path(self.directory / name) as tmp:
            save_file({key: value.detach().cpu().contiguous() for key, value in tensors.items()}, tmp)
        retained = [*(kept for kept in self._retained() if kept != name), name][-self.keep :]
        record = replace(record, tensors_file=name, retained=retained)
        with atomic_path(self.record_path) as tmp:
            tmp.write_text(json.dumps(asdict(record), indent=1) + "\n")
        for stale in self.directory.glob("checkpoint-epoch*.safetensors"):
            if stale.name not in retained:
                stale.unlink(missing_ok=True)
        logger.info("Checkpoint: epoch %d, step %d -> %s", record.epoch, record.step, self.directory / name)
        return record

    def _retained(self) -> list[str]:
        try:
            record = self.latest()
        except CheckpointError:
            return []
        return record.retained if record is not None else []


def module_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{name}": value for name, value in module.state_dict().items()}


def restore_module(prefix: str, module: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    start = f"{prefix}."
    module.load_state_dict({key[len(start) :]: value for key, value in tensors.items() if key.startswith(start)})


def optimizer_tensors(prefix: str, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The optimiser's per-parameter state (Adam's step and moments); hyperparameters come from the config."""
    return {
        f"{prefix}.{index}.{name}": value
        for index, state in optimizer.state_dict()["state"].items()
        for name, value in state.items()
    }


def restore_optimizer(prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    saved = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    start = f"{prefix}."
    for key, value in tensors.items():
        if key.startswith(start):
            index, name = key[len(start) :].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
