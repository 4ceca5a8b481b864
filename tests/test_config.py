from pathlib import Path

import pytest
import yaml
from kedro.config import OmegaConfigLoader

from gan_pipeline.config import EvaluationParams, ParameterError, TrainingParams, parse_params
from gan_pipeline.hooks import validate_parameters


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"training": {"epochs": -1}}, r"training\.epochs: Input should be greater than 0"),
        (
            {"training": {"preset": "nope"}},
            r"training\.preset: unknown preset 'nope'; allowed: \['auto', 'article_dcgan'",
        ),
        (
            {"training": {"batch_size": 5000}},
            r"training\.batch_size: 5000 is larger than the training split of 'digits'",
        ),
        ({"data_ingestion": {"dataset": "cifar"}}, r"data_ingestion\.dataset: unknown dataset 'cifar'; allowed: \["),
        ({"training": {"loss": "magic"}}, r"training\.loss: unknown loss 'magic'; allowed"),
        (
            {"training": {"architecture": {"layers": 3}}},
            r"training\.architecture: unknown architecture fields \['layers'\]",
        ),
        ({"training": {"epoch": 3}}, r"training\.epoch: Extra inputs are not permitted"),
        ({"data_processing": {"validation_fraction": 1.5}}, r"data_processing\.validation_fraction"),
        (
            {"data_ingestion": {"dataset": "grid25"}, "training": {"diff_augment": ["cutout"]}},
            r"training\.diff_augment: \['cutout'\] augments images, but 'grid25' samples are vectors",
        ),
        (
            {"training": {"batch_size": 500, "discriminator_steps": 3}},
            r"training\.batch_size: 500 x training\.discriminator_steps 3 is larger than the training split",
        ),
        ({"training": {"device": "gpu"}}, r"training\.device: unknown device 'gpu'; allowed: auto \| cpu \| cuda"),
        ({"training": {"resume": "yes"}}, r"training\.resume: Input should be 'auto' or 'never'"),
        ({"training": {"speed": {"precision": "fp16"}}}, r"training\.speed\.precision: Input should be 'auto'"),
        ({"training": {"speed": {"compile": "maybe"}}}, r"training\.speed\.compile"),
        ({"training": {"checkpoint": {"every_epochs": -1}}}, r"training\.checkpoint\.every_epochs"),
        ({"training": {"health": {"discriminator_win_score": 2}}}, r"training\.health\.discriminator_win_score"),
        ({"training": {"r1_gamma": -1}}, r"training\.r1_gamma: Input should be greater than or equal to 0"),
        (
            {"training": {"generated_batch_size": 1}},
            r"training\.generated_batch_size: Input should be greater than or equal to 2",
        ),
        ({"training": {"discriminator_steps": 0}}, r"training\.discriminator_steps: Input should be greater than 0"),
        (
            {"data_ingestion": {"dataset": "image_folder", "sources": {"image_folder": {"image_size": 32}}}},
            r"training\.preset: 'auto' cannot train on 'image_folder' samples of shape \(1, 32, 32\): no preset fits",
        ),
        (
            {"data_ingestion": {"dataset": "mnist"}, "training": {"preset": "digits_dcgan"}},
            r"'digits_dcgan' cannot train on 'mnist' samples of shape \(1, 28, 28\): .*produces 8x8 images",
        ),
        ({"promotion": {"frechet_distance_margin": 1.5}}, r"promotion\.frechet_distance_margin: Input should be less"),
        (
            {"evaluation": {"registered_model_name": "gan-{model}"}},
            r"evaluation\.registered_model_name: the only placeholder allowed is \{dataset\}",
        ),
    ],
)
def test_invalid_parameters_name_the_key_and_the_allowed_values(params, message):
    with pytest.raises(ParameterError, match=message):
        validate_parameters(params)


def test_defaults_are_valid():
    validate_parameters({})
    assert parse_params(TrainingParams, "training", None).loss == "non_saturating"


def test_the_registered_model_name_is_one_per_dataset():
    assert parse_params(EvaluationParams, "evaluation", None).model_name("mnist") == "gan-generator-mnist"


def test_the_shipped_training_parameters_parse_and_override_from_the_command_line_as_strings():
    shipped = yaml.safe_load((Path(__file__).parents[1] / "conf/base/parameters_training.yml").read_text())
    config = parse_params(TrainingParams, "training", shipped["training"])
    assert config.speed.compile == "auto" and config.resume == "auto" and config.checkpoint.every_epochs == 10
    overridden = parse_params(TrainingParams, "training", {"speed": {"compile": "false"}, "diff_augment": ["color"]})
    assert overridden.speed.compile is False and overridden.diff_augment == ("color",)


@pytest.mark.filterwarnings("ignore:register_new_resolver:UserWarning")  # upstream omegaconf deprecation
def test_the_stabilised_grid25_environment_validates_on_top_of_base():
    loader = OmegaConfigLoader(
        conf_source=str(Path(__file__).parents[1] / "conf"),
        base_env="base",
        default_run_env="grid25_stabilised",
        merge_strategy={"parameters": "soft"},
    )
    params = loader["parameters"]
    validate_parameters(params)
    training = parse_params(TrainingParams, "training", params["training"])
    assert params["data_ingestion"]["dataset"] == "grid25" and training.preset == "mlp_2d"
    assert (training.loss, training.r1_gamma, training.ema_decay) == ("non_saturating", 1.0, 0.999)
    assert training.speed.compile == "auto"  # keys the environment leaves alone come from base
