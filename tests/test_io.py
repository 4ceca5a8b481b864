import json

import numpy as np
import pandas as pd
import pytest
from kedro.io import DatasetError

from gan_pipeline.errors import user_error_in
from gan_pipeline.gan.files import TensorFile
from gan_pipeline.io import (
    InMemoryOutput,
    JSONDataset,
    SplitDataset,
    TableDataset,
    TensorsDataset,
    atomic_path,
    read_metadata,
    write_tensors,
)
from gan_pipeline.splits import DatasetRecordError, MixtureModes
from tests.settings import split_of


def test_tensors_round_trip_with_metadata(tmp_path):
    dataset = TensorsDataset(str(tmp_path / "t.safetensors"))
    dataset.save(TensorFile({"x": np.arange(6, dtype=np.float32).reshape(2, 3)}, {"k": "v"}))
    loaded = dataset.load()
    np.testing.assert_array_equal(loaded.arrays["x"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert loaded.metadata == {"k": "v"}


def test_a_split_round_trips_with_its_record_read_back_through_one_function(tmp_path):
    samples = np.random.default_rng(0).normal(size=(10, 2)).astype(np.float32)
    modes = MixtureModes(centres=((0.1, 0.2), (1 / 3, -4.0)), std=0.05)
    split = split_of(samples, np.arange(10) % 2, "ring8", modes=modes, seed=3)
    dataset = SplitDataset(str(tmp_path / "split.safetensors"))
    dataset.save(split)
    loaded = dataset.load()
    np.testing.assert_array_equal(loaded.samples, samples)
    assert loaded.record == split.record  # centres to the last bit: JSON keeps a float's repr exactly
    header = read_metadata(tmp_path / "split.safetensors")
    assert header["dataset"] == "ring8" and json.loads(header["card"]) == {"dataset": "ring8", "seed": 3}


def test_a_data_file_without_a_record_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "train_set.safetensors"
    TensorsDataset(str(path)).save(TensorFile({"samples": np.zeros((2, 2)), "labels": np.zeros(2)}, {"dataset": "x"}))
    with pytest.raises(DatasetError) as err:
        SplitDataset(str(path)).load()
    cause = user_error_in(err.value)  # Kedro wraps it; the message printed is the record's
    assert isinstance(cause, DatasetRecordError)
    assert "train_set.safetensors does not record what data it holds" in str(cause) and "`dvc repro`" in str(cause)


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    JSONDataset(str(target)).save({"a": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("{half")
        raise RuntimeError("killed mid-write")
    assert JSONDataset(str(target)).load() == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_corrupt_weights_file_is_reported_with_the_fix(tmp_path):
    path = tmp_path / "generator.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header")
    with pytest.raises(DatasetError, match=r"not a readable safetensors file.*rerun") as err:
        TensorsDataset(str(path)).load()
    assert user_error_in(err.value) is err.value  # reported as a message, not a traceback


def test_a_missing_input_names_the_pipeline_to_run(tmp_path):
    with pytest.raises(DatasetError, match="does not exist; run the pipeline"):
        TableDataset(str(tmp_path / "absent.csv")).load()
    assert TensorsDataset(str(tmp_path / "absent.safetensors"), missing_ok=True).load() is None


def test_tables_round_trip(tmp_path):
    frame = pd.DataFrame({"step": [1, 2], "d_loss": [0.5, 0.25]})
    dataset = TableDataset(str(tmp_path / "nested" / "loss.csv"))
    dataset.save(frame)
    pd.testing.assert_frame_equal(dataset.load(), frame)


def test_the_same_tensors_always_write_the_same_bytes(tmp_path):
    """safetensors writes its metadata in hash-map order; DVC would see every rewrite as a new version."""
    metadata = {f"key_{index}": f"value {index} é" for index in range(8)}
    data = TensorFile({"b": np.ones((2, 3), dtype=np.float32), "a": np.arange(4, dtype=np.int64)}, metadata)
    contents = set()
    for attempt in range(6):
        path = tmp_path / f"{attempt}.safetensors"
        TensorsDataset(str(path)).save(data)
        contents.add(path.read_bytes())
    assert len(contents) == 1
    loaded = TensorsDataset(str(tmp_path / "0.safetensors")).load()
    assert loaded.metadata == metadata
    np.testing.assert_array_equal(loaded.arrays["a"], data.arrays["a"])


def test_in_memory_output_keeps_saves_off_disk_and_reads_the_file_until_then(tmp_path):
    path = tmp_path / "metrics.json"
    JSONDataset(str(path)).save({"from": "disk"})
    before = path.stat().st_mtime_ns
    output = InMemoryOutput(JSONDataset(str(path)))
    assert output.load() == {"from": "disk"}
    output.save({"from": "this process"})
    assert output.load() == {"from": "this process"}
    assert json.loads(path.read_text()) == {"from": "disk"} and path.stat().st_mtime_ns == before
    assert InMemoryOutput(JSONDataset(str(tmp_path / "absent.json"))).exists() is False


def test_written_files_get_the_permissions_of_the_umask_not_the_temporary_file_s(tmp_path):
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    write_tensors(TensorFile({"w": np.zeros(3, dtype=np.float32)}), tmp_path / "weights.safetensors")
    JSONDataset(str(tmp_path / "metrics.json")).save({"a": 1})
    for name in ("weights.safetensors", "metrics.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


def test_weights_of_another_network_are_refused_naming_the_file_and_the_fix(tmp_path):
    import torch

    from gan_pipeline.gan.networks import build_networks
    from gan_pipeline.gan.presets import PRESETS
    from gan_pipeline.gan.serialization import architecture_metadata, module_to_tensors
    from gan_pipeline.pipelines.evaluation.nodes import generator_network

    generator, discriminator = build_networks(PRESETS["digits_dcgan"])
    path = tmp_path / "generator.safetensors"
    # The discriminator's weights under the generator's header: a valid file of the wrong network.
    write_tensors(module_to_tensors(discriminator, architecture=architecture_metadata(generator.arch)), path)
    with pytest.raises(
        DatasetError,
        match=rf"{path} does not hold the generator its header describes: \d+ weights "
        r"missing .*Rerun the training \(kedro run --pipelines training\)",
    ) as err:
        generator_network(TensorsDataset(str(path)).load())
    assert user_error_in(err.value) is err.value
    write_tensors(module_to_tensors(torch.nn.Linear(2, 2)), path)  # no architecture at all
    with pytest.raises(DatasetError, match=rf"{path} has no architecture in its header"):
        generator_network(TensorsDataset(str(path)).load())
