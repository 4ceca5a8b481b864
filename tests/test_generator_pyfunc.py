"""The registered generator as users load it: mlflow.pyfunc, a clean process, and `mlflow models serve`."""

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.exceptions import MlflowException

from gan_pipeline.console import cli
from tests.mlflow_server import served_model

LATENT_DIM = 64  # the digits_dcgan preset the registered_generator fixture uses


@pytest.fixture(scope="module")
def champion_uri(registered_generator) -> Iterator[str]:
    tracking_uri, name, version = registered_generator
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", version)
    yield f"models:/{name}@champion"
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def model(champion_uri):
    return mlflow.pyfunc.load_model(champion_uri)


def test_predict_returns_float32_images_in_the_tanh_range(model):
    images = model.predict({"num_samples": 5, "seed": 0})
    assert images.shape == (5, 1, 8, 8)
    assert images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0


def test_the_same_seed_gives_the_same_images_and_another_seed_others(model):
    first = model.predict({"num_samples": 4, "seed": 7})
    assert np.array_equal(first, model.predict({"num_samples": 4, "seed": 7}))
    assert not np.allclose(first, model.predict({"num_samples": 4, "seed": 8}))
    assert not np.allclose(model.predict({"num_samples": 4}), model.predict({"num_samples": 4}))


def test_a_latent_batch_gives_one_image_per_row_matching_the_seeded_path(model):
    import torch

    latent = torch.randn(3, LATENT_DIM, generator=torch.Generator().manual_seed(7)).numpy()
    images = model.predict(pd.DataFrame({"latent": list(latent)}))
    as_doubles = model.predict(pd.DataFrame({"latent": list(latent.astype(np.float64))}))  # what JSON gives
    assert np.array_equal(images, as_doubles)
    assert np.allclose(images, model.predict({"num_samples": 3, "seed": 7}), atol=1e-6)


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"num_samples": 0}, r"num_samples must be in \[1, 65536\], got 0"),
        (pd.DataFrame({"latent": [np.zeros(3, dtype=np.float32)]}), r"each latent vector needs 64 values"),
        (pd.DataFrame({"num_samples": [2, 3]}), r"got 2 rows and no 'latent' column"),
        (pd.DataFrame({"n": [2]}), r"got no 'num_samples' or 'latent' column"),
    ],
)
def test_a_malformed_request_is_refused_with_what_to_send(model, request_body, message):
    with pytest.raises(MlflowException, match=message) as caught:
        model.predict(request_body)
    assert "num_samples" in str(caught.value) and "latent" in str(caught.value)


def test_the_torch_generator_is_reachable_for_python_users(model):
    import torch

    generator = model.unwrap_python_model().generator
    images = generator(torch.randn(2, LATENT_DIM))
    assert images.shape == (2, 1, 8, 8)


def test_the_model_loads_and_predicts_in_a_process_that_cannot_import_the_project(
    registered_generator, champion_uri, model, tmp_path
):
    tracking_uri, _, _ = registered_generator
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys

        class NoProject(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] == "gan_pipeline":
                    raise ModuleNotFoundError(f"the project is not importable here: {{name}}")

        sys.meta_path.insert(0, NoProject())
        sys.path = [p for p in sys.path if not p.endswith("src") and p not in ("", ".")]
        import mlflow, numpy as np
        mlflow.set_tracking_uri({tracking_uri!r})
        images = mlflow.pyfunc.load_model({champion_uri!r}).predict({{"num_samples": 3, "seed": 11}})
        assert not any(name.startswith("gan_pipeline") for name in sys.modules), "the project was imported"
        np.save("images.npy", images)
        """
    )
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Equal up to float rounding: this process runs torch on one thread, the child on several.
    assert np.allclose(np.load(tmp_path / "images.npy"), model.predict({"num_samples": 3, "seed": 11}), atol=1e-6)


@pytest.mark.slow
def test_mlflow_models_serve_answers_plain_json_as_gan_pipeline_generate_does(
    registered_generator, champion_uri, tmp_path
):
    """The REST API with JSON a curl user would write: latents as plain floats, or a count and a seed."""
    tracking_uri, _, _ = registered_generator
    latents = np.random.default_rng(3).standard_normal((3, LATENT_DIM)).round(6)
    np.save(tmp_path / "latents.npy", latents)
    generate = ["generate", "--model", champion_uri, "--tracking-uri", tracking_uri]
    for args in (
        ["--latents", str(tmp_path / "latents.npy"), "--out", str(tmp_path / "from_latents.npz")],
        ["--num", "2", "--seed", "5", "--out", str(tmp_path / "from_seed.npz")],
    ):
        result = CliRunner().invoke(cli, [*generate, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    with served_model(champion_uri, tracking_uri, tmp_path) as post:
        from_latents = post({"dataframe_split": {"columns": ["latent"], "data": [[row] for row in latents.tolist()]}})
        from_seed = post({"dataframe_records": [{"num_samples": 2, "seed": 5}]})
        malformed = [
            post({"dataframe_records": [{"n": 2}]}),
            post({"dataframe_split": {"columns": ["latent"], "data": [[[0.5, 0.25]]]}}),
        ]
    for (status, answer), expected in ((from_latents, "from_latents.npz"), (from_seed, "from_seed.npz")):
        assert status == 200, answer
        images = np.asarray(answer["predictions"], dtype=np.float32)
        assert images.min() >= -1 and images.max() <= 1 and images.std() > 0
        assert images.shape[1:] == (1, 8, 8)
        assert np.allclose(images, np.load(tmp_path / expected)["images"], atol=1e-6)
    for status, answer in malformed:
        assert status == 400, answer
        assert "num_samples" in answer["message"] and "latent" in answer["message"]


def test_a_rerun_of_a_run_that_registered_keeps_its_one_version(mlflow_store):
    """A run stopped after registering and run again (its evaluation redone) registers no second version."""
    from gan_pipeline.gan.networks import build_networks
    from gan_pipeline.gan.presets import PRESETS
    from gan_pipeline.gan.serialization import architecture_metadata, module_to_tensors
    from gan_pipeline.registry import log_generator

    generator, _ = build_networks(PRESETS["digits_dcgan"])
    tensors = module_to_tensors(generator.eval(), architecture=architecture_metadata(generator.arch))
    with mlflow.start_run():
        first = log_generator(tensors, "rerun-generator", {"dataset": "digits"})
        again = log_generator(tensors, "rerun-generator", {"dataset": "digits"})
    assert again == first
    assert len(mlflow.MlflowClient().search_model_versions("name = 'rerun-generator'")) == 1
