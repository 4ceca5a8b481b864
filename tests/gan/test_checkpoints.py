import json
from dataclasses import asdict, replace

import pytest
import torch

from gan_pipeline.gan.checkpoints import CheckpointError, CheckpointMismatchError, CheckpointStore, data_fingerprint
from gan_pipeline.gan.networks import build_networks, with_spectral_norm
from gan_pipeline.gan.presets import PRESETS
from gan_pipeline.gan.runtime import seeded_generator
from gan_pipeline.gan.settings import TrainingSettings
from gan_pipeline.gan.training import Checkpointing, train_gan
from tests.conftest import scaled
from tests.settings import tiny_settings

# Every stateful option at once: EMA, spectral norm's power iteration, R1, several D steps, DiffAugment.
STATEFUL = {
    "epochs": 4,
    "batch_size": 16,
    "log_every_steps": 3,
    "num_fixed_samples": 4,
    "loss": "hinge",
    "r1_gamma": 1.0,
    "discriminator_steps": 2,
    "diff_augment": ("translation", "cutout", "color"),
    "lr_decay_start": 0.5,  # the resumed epochs run at decayed rates
}


def trajectory(settings: TrainingSettings) -> dict:
    """What must match to continue a checkpoint, as a caller records it (JSON types): all but the cosmetic."""
    return json.loads(json.dumps({k: v for k, v in asdict(settings).items() if k not in ("progress_bar", "speed")}))


class Interrupted(Exception):
    """Stands in for a killed process: raised from inside the loop, after some checkpoints."""


@pytest.fixture
def real(digits_raw):
    return scaled(digits_raw.samples[:128])


def _train(real, directory, stop_at_step=None, arch=PRESETS["digits_dcgan"], resume=True, run_id="run-1", **overrides):
    config = tiny_settings(**{**STATEFUL, **overrides})
    rng = seeded_generator(config.seed, torch.device("cpu"))
    generator, discriminator = build_networks(arch)
    with_spectral_norm(discriminator)
    logged = []

    def on_step(step, row):
        logged.append(step)
        if stop_at_step is not None and step >= stop_at_step:
            raise Interrupted

    fingerprint = data_fingerprint(real.numpy())
    checkpointing = Checkpointing(CheckpointStore(directory), 1, fingerprint, trajectory(config), resume, run_id)
    result = train_gan(generator, discriminator, real, config, rng, on_step=on_step, checkpointing=checkpointing)
    return result, generator, discriminator, logged


def test_an_interrupted_run_resumes_to_exactly_the_uninterrupted_result(real, tmp_path):
    straight, g_straight, d_straight, _ = _train(real, tmp_path / "straight")
    with pytest.raises(Interrupted):
        _train(real, tmp_path / "resumed", stop_at_step=13)  # in epoch 4 (4 steps per epoch), after 3 checkpoints
    resumed, g_resumed, d_resumed, logged = _train(real, tmp_path / "resumed")

    assert resumed.resumed_from_step == 12
    assert logged[:4] == [3, 6, 9, 12]  # the checkpoint's history is replayed first, then training goes on

    def without_timing(history):
        return [{key: value for key, value in row.items() if key != "images_per_second"} for row in history]

    assert without_timing(resumed.history) == without_timing(straight.history)
    for straight_net, resumed_net in (
        (g_straight, g_resumed),
        (d_straight, d_resumed),
        (straight.generator, resumed.generator),
    ):
        for (name, a), b in zip(straight_net.state_dict().items(), resumed_net.state_dict().values(), strict=True):
            assert torch.equal(a, b), name
    assert [epoch for epoch, _ in resumed.snapshots] == [1, 2, 3, 4]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(straight.snapshots, resumed.snapshots, strict=True))


def test_checkpoints_hold_every_piece_of_state_and_the_record_commits_them(real, tmp_path):
    _train(real, tmp_path, epochs=3)
    store = CheckpointStore(tmp_path)
    record = store.latest()
    assert (record.epoch, record.step, record.completed, record.tracking_run_id) == (3, 12, True, "run-1")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-epoch00002.safetensors",
        "checkpoint-epoch00003.safetensors",
        "last.json",
    ]  # keep=2: older files pruned, no temporary files left behind
    tensors = store.load(record)
    prefixes = {name.split(".")[0] for name in tensors}
    assert prefixes == {"generator", "discriminator", "ema", "optimizer_g", "optimizer_d", "rng", "snapshot"}
    assert {"rng.0.torch", "rng.0.shuffle", "rng.0.noise"} <= set(tensors)
    assert any(name.endswith("exp_avg_sq") for name in tensors if name.startswith("optimizer_d"))
    assert json.loads((tmp_path / "last.json").read_text())["history"][-1]["step"] == 12


def test_a_finished_run_is_not_resumed_and_never_ignores_checkpoints(real, tmp_path):
    _train(real, tmp_path, epochs=2)
    again, *_ = _train(real, tmp_path, epochs=2, run_id="run-2")
    assert again.resumed_from_step == 0
    with pytest.raises(Interrupted):
        _train(real, tmp_path, epochs=2, stop_at_step=6)
    fresh, *_ = _train(real, tmp_path, epochs=2, resume=False)
    assert fresh.resumed_from_step == 0


def test_the_run_that_finished_a_checkpoint_takes_it_up_without_training_again(real, tmp_path):
    """A run stopped after training (killed during evaluation) continues from its trained networks."""
    trained, *_ = _train(real, tmp_path, epochs=2)
    taken_up, _, _, logged = _train(real, tmp_path, epochs=2, stop_at_step=None)
    assert taken_up.resumed_from_step == 8  # all of it: no step trained
    assert logged == [row["step"] for row in trained.history]  # the history replayed, nothing new
    assert taken_up.history == trained.history
    for (name, a), b in zip(
        trained.generator.state_dict().items(), taken_up.generator.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(trained.snapshots, taken_up.snapshots, strict=True))


def test_an_unfinished_checkpoint_of_a_different_run_is_refused_with_the_changed_settings(real, tmp_path):
    with pytest.raises(Interrupted):
        _train(real, tmp_path, stop_at_step=6)
    with pytest.raises(CheckpointMismatchError, match=r"generator_lr: 0.0002 in the checkpoint, 0.001 now") as err:
        _train(real, tmp_path, generator_lr=1e-3)
    assert "start a new run without resuming" in str(err.value)
    assert [difference.setting for difference in err.value.differences] == ["generator_lr"]
    assert "training.generator_lr: 0.0002" in err.value.describe(lambda setting: f"training.{setting}")
    with pytest.raises(CheckpointError, match="the training set differs"):
        _train(real.flip(0), tmp_path)
    resumed, *_ = _train(real, tmp_path, progress_bar=True, log_every_steps=3)  # cosmetic keys may change
    assert resumed.resumed_from_step == 4


def test_a_checkpoint_of_another_network_is_refused_even_when_its_weights_would_load(real, tmp_path):
    with pytest.raises(Interrupted):
        _train(real, tmp_path, stop_at_step=6)
    # Same parameter shapes, another output layer: what a changed preset under `preset: auto` looks like.
    plain_tanh = replace(PRESETS["digits_dcgan"], generator_output_scale=1.0)
    with pytest.raises(CheckpointError, match=r"network generator_output_scale: 1.2 in the checkpoint, 1.0 now"):
        _train(real, tmp_path, arch=plain_tanh)
    record = json.loads((tmp_path / "last.json").read_text())
    del record["network"]  # as written before records named their network
    (tmp_path / "last.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="does not record its network"):
        _train(real, tmp_path)


def test_a_record_that_cannot_be_read_names_the_fix(tmp_path):
    (tmp_path / "last.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"is not a checkpoint record .* start a new run without resuming"):
        CheckpointStore(tmp_path).latest()
