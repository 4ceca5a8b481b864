"""The `gan-pipeline` command on a registered generator in a local store."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gan_pipeline.console import cli


@pytest.fixture
def invoke(registered_generator):
    tracking_uri, _, _ = registered_generator
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, [*args, "--tracking-uri", tracking_uri], catch_exceptions=False)

    return run


@pytest.fixture
def model_uri(registered_generator) -> str:
    _, name, version = registered_generator
    return f"models:/{name}/{version}"


def test_generate_writes_a_png_grid_of_the_requested_images(invoke, model_uri, tmp_path):
    result = invoke("generate", "--model", model_uri, "--num", "10", "--seed", "0", "--out", str(tmp_path / "g.png"))
    assert result.exit_code == 0, result.output
    assert "wrote 10 images of shape (1, 8, 8)" in result.output
    with Image.open(tmp_path / "g.png") as picture:
        picture.verify()
    with Image.open(tmp_path / "g.png") as picture:  # 4 columns of 8 px cells + 1 px padding, scaled by 8
        assert picture.format == "PNG" and picture.size == (8 * (4 * 9 + 1), 8 * (3 * 9 + 1))
        assert len(np.unique(np.asarray(picture))) > 2


def test_generate_writes_the_raw_images_to_npz_reproducibly(invoke, model_uri, tmp_path):
    for name in ("a.npz", "b.npz"):
        assert (
            invoke(
                "generate", "--model", model_uri, "--num", "5", "--seed", "3", "--out", str(tmp_path / name)
            ).exit_code
            == 0
        )
    first, second = np.load(tmp_path / "a.npz")["images"], np.load(tmp_path / "b.npz")["images"]
    assert first.shape == (5, 1, 8, 8) and first.dtype == np.float32
    assert np.array_equal(first, second)


def test_generate_from_a_latents_file_gives_one_image_per_row_as_the_seeded_path_does(invoke, model_uri, tmp_path):
    import torch

    latents = torch.randn(3, 64, generator=torch.Generator().manual_seed(4)).numpy().astype(np.float64)
    np.save(tmp_path / "latents.npy", latents)
    from_file = invoke(
        "generate", "--model", model_uri, "--latents", str(tmp_path / "latents.npy"), "--out", str(tmp_path / "a.npz")
    )
    seeded = invoke("generate", "--model", model_uri, "--num", "3", "--seed", "4", "--out", str(tmp_path / "b.npz"))
    assert from_file.exit_code == seeded.exit_code == 0, from_file.output + seeded.output
    assert "wrote 3 images" in from_file.output
    assert np.allclose(np.load(tmp_path / "a.npz")["images"], np.load(tmp_path / "b.npz")["images"], atol=1e-6)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros(64, dtype=np.float32), "expected a float array of shape (N, latent_dim), got float32 (64,)"),
        (np.array([{"a": 1}], dtype=object), "not a .npy array of numbers"),
    ],
)
def test_generate_refuses_a_latents_file_it_cannot_use(invoke, model_uri, tmp_path, array, message):
    np.save(tmp_path / "latents.npy", array, allow_pickle=True)
    result = invoke(
        "generate", "--model", model_uri, "--latents", str(tmp_path / "latents.npy"), "--out", str(tmp_path / "g.png")
    )
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "g.png").exists()


def test_generate_refuses_an_unknown_output_format_before_loading_anything(invoke, model_uri, tmp_path):
    result = invoke("generate", "--model", model_uri, "--out", str(tmp_path / "g.jpg"))
    assert result.exit_code == 2
    assert "g.jpg: the file must end in one of ['.png', '.npz']" in result.output
    assert not (tmp_path / "g.jpg").exists()


def test_generate_names_the_model_it_could_not_load(invoke, tmp_path):
    result = invoke("generate", "--model", "models:/no-such-model@champion", "--out", str(tmp_path / "g.png"))
    assert result.exit_code == 1
    assert "cannot generate from models:/no-such-model@champion" in result.output
    assert not (tmp_path / "g.png").exists()


def test_compare_lists_the_runs_with_their_registered_versions(invoke, registered_generator, tmp_path):
    _, name, version = registered_generator
    result = invoke("compare", "--csv", str(tmp_path / "runs.csv"))
    assert result.exit_code == 0, result.output
    header, *rows = [line for line in result.output.splitlines() if line.strip()]
    assert name in header and "status" not in header  # the model's name said once; every run FINISHED
    assert any(f" v{version}" in row for row in rows)
    assert max(len(line) for line in result.output.splitlines()) <= 160
    assert (tmp_path / "runs.csv").read_text().startswith("run,name,started,status,model")
    assert f"{name} v{version}" in (tmp_path / "runs.csv").read_text()


def test_parameters_are_shown_by_their_shortest_distinct_names():
    from gan_pipeline.comparison import shortest_unique_names

    names = ["training.epochs", "evaluation.judge.epochs", "training.generator_lr", "data_processing.seed"]
    assert shortest_unique_names(names) == ["training.epochs", "judge.epochs", "generator_lr", "seed"]


def test_compare_names_the_experiments_that_exist_when_asked_for_another(invoke):
    result = invoke("compare", "--experiment", "nope")
    assert result.exit_code == 1
    assert "no experiment 'nope'" in result.output and "'gan-pipeline'" in result.output


def test_run_forwards_to_kedro_run():
    result = CliRunner().invoke(cli, ["run", "--help"])
    assert result.exit_code == 0
    assert "--pipeline" in result.output and "--params" in result.output
