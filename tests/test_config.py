import pytest

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
