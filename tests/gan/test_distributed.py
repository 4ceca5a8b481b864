"""Data-parallel training: shard arithmetic in-process, then two real processes under torchrun (gloo, CPU)."""

import json
import subprocess
from pathlib import Path

import pytest
import torch

from gan_pipeline.gan.distributed import SINGLE_PROCESS, distributed_device
from gan_pipeline.gan.settings import SettingError
from gan_pipeline.gan.training import shard_indices
from tests.gan.ddp_worker import CONFIG, NUM_SAMPLES
from tests.kedro_project import PROJECT_ROOT, VENV_BIN, project_env

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_shards_of_a_shared_permutation_are_disjoint_equal_and_drop_the_remainder():
    order = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    shards = [shard_indices(order, rank, 3) for rank in range(3)]
    assert [len(shard) for shard in shards] == [3, 3, 3]
    assert sorted(torch.cat(shards).tolist()) == sorted(order[:9].tolist())
    assert torch.equal(shard_indices(order, 0, 1), order)


def test_a_single_process_needs_no_process_group():
    values = torch.tensor([1.0, 2.0])
    assert SINGLE_PROCESS.mean(values) is values and SINGLE_PROCESS.maximum(values) is values
    assert SINGLE_PROCESS.gather("x") == ["x"] and SINGLE_PROCESS.from_main(3) == 3
    module = torch.nn.Linear(2, 1)
    assert SINGLE_PROCESS.wrap(module, torch.device("cpu")) is module


def test_a_fixed_gpu_cannot_be_shared_by_several_processes():
    with pytest.raises(SettingError, match=r"device: 'cuda:1' cannot be shared .* use 'auto' or 'cuda'"):
        distributed_device("cuda:1", local_rank=0)
    assert distributed_device("cpu", local_rank=1) == torch.device("cpu")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("ddp")
    result = subprocess.run(
        [str(VENV_BIN / "torchrun"), "--standalone", "--nproc-per-node", "2", str(WORKER), str(out)],
        env={**project_env(), "PYTHONPATH": str(PROJECT_ROOT)},  # the worker takes its settings from tests/
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, [json.loads((out / f"rank{rank}.json").read_text()) for rank in (0, 1)]


@pytest.mark.slow
def test_two_processes_train_on_disjoint_equal_shards_of_the_epoch(two_processes):
    _, (rank0, rank1) = two_processes
    assert (rank0["world_size"], rank1["world_size"]) == (2, 2)
    batch, d_steps = CONFIG.batch_size, CONFIG.discriminator_steps
    steps = (NUM_SAMPLES // 2) // (batch * d_steps)  # 65 samples per process: 2 steps of 2 x 16
    per_process = steps * d_steps * batch  # every real batch distinct; the remainder is dropped
    assert len(rank0["real_indices"]) == len(rank1["real_indices"]) == per_process
    assert not set(rank0["real_indices"]) & set(rank1["real_indices"])


@pytest.mark.slow
def test_both_processes_end_with_the_same_generator_and_averaged_metrics(two_processes):
    _, (rank0, rank1) = two_processes
    assert rank0["generator_sha256"] == rank1["generator_sha256"]  # gradients were averaged every step
    assert rank0["history"] == rank1["history"]  # metrics reduced across processes before logging
    assert [row["step"] for row in rank0["history"]] == [1, 2]


@pytest.mark.slow
def test_only_the_main_process_writes_checkpoints(two_processes):
    out, _ = two_processes
    assert (out / "rank0-checkpoints" / "last.json").is_file()
    assert not (out / "rank1-checkpoints").exists()
