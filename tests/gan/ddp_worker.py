"""Run by ``torchrun`` from test_distributed.py: train on this process' shard, record what it saw.

Every real sample is unique, so the batches D receives map back to sample indices. Each process
writes ``<out>/rank<R>.json`` (the test's own record, not a project output) and is given its own
checkpoint directory ``<out>/rank<R>-checkpoints``, which only the main process may fill.
"""

import hashlib
import json
import sys
from pathlib import Path

import torch

from gan_pipeline.gan.checkpoints import CheckpointStore
from gan_pipeline.gan.distributed import distributed_training
from gan_pipeline.gan.networks import build_networks, with_spectral_norm
from gan_pipeline.gan.presets import PRESETS
from gan_pipeline.gan.runtime import seeded_generator
from gan_pipeline.gan.training import Checkpointing, train_gan
from tests.settings import tiny_settings

# Spectral norm (on D below), hinge loss, R1 and two D steps: every option that shares state across processes.
CONFIG = tiny_settings(
    loss="hinge",
    r1_gamma=1.0,
    discriminator_steps=2,
    epochs=1,
    batch_size=16,
    standing_statistics_batches=2,
    log_every_steps=1,
    num_fixed_samples=4,
)
NUM_SAMPLES = 130  # not a multiple of 2 processes x 2 D steps x 16: the remainder is dropped


def main(out: Path) -> None:
    torch.set_num_threads(1)
    config = CONFIG
    with distributed_training("cpu", "gloo") as (distributed, device):
        real = torch.rand(NUM_SAMPLES, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
        index_of = {row.numpy().tobytes(): index for index, row in enumerate(real)}
        rng = seeded_generator(config.seed, device)
        generator, discriminator = build_networks(PRESETS["digits_dcgan"])
        with_spectral_norm(discriminator)
        seen: list[int] = []

        def record_real_rows(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            seen.extend(index_of[row] for row in (r.detach().numpy().tobytes() for r in args[0]) if row in index_of)

        discriminator.register_forward_pre_hook(record_real_rows)
        store = CheckpointStore(out / f"rank{distributed.rank}-checkpoints")
        checkpointing = Checkpointing(store, 1, "test", trajectory={"world_size": distributed.world_size}, resume=True)
        result = train_gan(
            generator, discriminator, real, config, rng, checkpointing=checkpointing, distributed=distributed
        )
        weights = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in generator.parameters())).hexdigest()
        record = {
            "rank": distributed.rank,
            "world_size": distributed.world_size,
            "real_indices": sorted(set(seen)),
            "real_rows_seen": len(seen),
            "history": result.history,
            "generator_sha256": weights,
        }
        (out / f"rank{distributed.rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
