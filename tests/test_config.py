from pathlib import Path

import pytest
import yaml
from kedro.config import OmegaConfigLoader
from pydantic import BaseModel

from gan_pipeline.config.base import ParameterError, parse_params
from gan_pipeline.config.run import SECTIONS, RunParameters, validate_parameters
from gan_pipeline.config.training import TrainingParams
from gan_pipeline.datasets import DATASETS
from tests.settings import base_parameters, evaluation_params, merged


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
            r"training\.batch_size: 5000 is larger than the training data \(1437 samples\); lower it "
            r"\(data_ingestion.dataset 'digits'\)",
        ),
        ({"data_ingestion": {"dataset": "cifar"}}, r"data_ingestion\.dataset: unknown dataset 'cifar'; allowed: \["),
        ({"training": {"loss": "magic"}}, r"training\.loss: unknown loss 'magic'; allowed"),
        (
            {"training": {"architecture": {"layers": 3}}},
            r"training\.architecture: unknown architecture fields \['layers'\]",
        ),
        (
            {"training": {"epoch": 3}},
            r"training\.epoch: unknown key \(did you mean 'training\.epochs'\?\); the keys here are \['architecture'",
        ),
        ({"training": {"epochs": True}}, r"training\.epochs: a boolean where a number \(or a name\) is expected"),
        ({"training": {"checkpoint": {"keep": False}}}, r"training\.checkpoint\.keep: a boolean where a number"),
        (
            {"training": {"checkpoint": {"evry_epochs": 3}}},
            r"training\.checkpoint\.evry_epochs: unknown key \(did you mean 'training\.checkpoint\.every_epochs'\?\)",
        ),
        ({"data_processing": {"validation_fraction": 1.5}}, r"data_processing\.validation_fraction"),
        (
            {"data_ingestion": {"dataset": "grid25"}, "training": {"diff_augment": ["cutout"], "preset": "mlp_2d"}},
            r"training\.diff_augment: \['cutout'\] augments images .* shape \(2,\); set it to \[\]",
        ),
        (
            {"training": {"batch_size": 500, "discriminator_steps": 3}},
            r"training\.batch_size: 500 x discriminator_steps 3 is larger than the training data",
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
            {
                "data_ingestion": {
                    "dataset": "image_folder",
                    "sources": {"image_folder": {"image_size": 48, "channels": 3}},
                }
            },
            r"training\.preset: 'auto' finds no preset for samples of shape \(3, 48, 48\): .* the nearest are 32 and "
            r"64: resize .*; or set data_ingestion\.sources\.image_folder\.image_size",
        ),
        (
            {"data_ingestion": {"dataset": "mnist"}, "training": {"preset": "digits_dcgan"}},
            r"training\.preset: 'digits_dcgan' cannot train on samples of shape \(1, 28, 28\): .*produces 8x8 images",
        ),
        (
            {"training": {"architecture": {"base_size": 3}}},
            r"training\.architecture: 'digits_dcgan' cannot train on samples of shape \(1, 8, 8\): the generator "
            r"produces 12x12",
        ),
        (
            {"data_ingestion": {"sources": {"digits": {"max_sample": 10}}}},
            r"data_ingestion\.sources\.digits\.max_sample: unknown key \(did you mean "
            r"'data_ingestion\.sources\.digits\.max_samples'\?\); the keys here are \['max_samples'\]",
        ),
        ({"trainin": {"epochs": 3}}, r"trainin: unknown section \(did you mean 'training'\?\); the sections here are"),
        ({"promotion": {"frechet_distance_margin": 1.5}}, r"promotion\.frechet_distance_margin: Input should be less"),
        (
            {"evaluation": {"registered_model_name": "gan-{model}"}},
            r"evaluation\.registered_model_name: the only placeholder allowed is \{dataset\}",
        ),
        (
            {
                "data_ingestion": {"dataset": "grid25"},
                "training": {"preset": "mlp_2d"},
                "evaluation": {"inception": True},
            },
            r"evaluation\.inception: Inception-v3 scores images; 'grid25' holds vectors. Set it to false",
        ),
        ({"evaluation": {"inception_weights": 3}}, r"evaluation\.inception_weights: Input should be a valid string"),
    ],
)
def test_invalid_parameters_name_the_key_and_the_allowed_values(params, message):
    with pytest.raises(ParameterError, match=message):
        validate_parameters(merged(base_parameters(), params))


def test_every_problem_is_listed_at_once():
    with pytest.raises(ParameterError) as err:
        validate_parameters(
            merged(base_parameters(), {"training": {"epochs": -1, "loss": "magic"}, "promotion": {"max_retries": 99}})
        )
    assert {problem.split(":")[0] for problem in err.value.problems} == {
        "training.epochs",
        "training.loss",
        "promotion.max_retries",
    }
    assert "kedro run --params <key>=<value>" in str(err.value)


def test_the_shipped_parameters_are_valid_and_every_key_is_set_in_conf_base():
    run = validate_parameters(base_parameters())
    assert run.training.loss == "non_saturating" and run.evaluation.model_name("mnist") == "gan-generator-mnist"
    with pytest.raises(ParameterError, match=r"training\.epochs: missing; every key is set in conf/base"):
        parse_params(
            TrainingParams,
            "training",
            {key: value for key, value in base_parameters()["training"].items() if key != "epochs"},
        )


def models_of(model: type[BaseModel]) -> list[type[BaseModel]]:
    """``model`` and the models of its nested sections."""
    nested = [field.annotation for field in model.model_fields.values()]
    return [
        model,
        *(sub for kind in nested if isinstance(kind, type) and issubclass(kind, BaseModel) for sub in models_of(kind)),
    ]


def test_the_parameter_models_carry_no_defaults_so_conf_base_is_the_one_source_of_values():
    for section_model in SECTIONS.values():
        for model in models_of(section_model):
            defaults = [name for name, field in model.model_fields.items() if not field.is_required()]
            assert defaults == [], f"{model.__name__} has defaults for {defaults}"


def test_where_conf_base_sets_a_source_option_it_agrees_with_the_source_default():
    """Source options keep defaults (mirrors, checksums: data, not tunables); the YAML may only restate them."""
    for name, options in base_parameters()["data_ingestion"]["sources"].items():
        model = DATASETS[name].options
        default, configured = model(), model.model_validate(options or {})
        for key in options or {}:
            assert getattr(configured, key) == getattr(default, key), f"data_ingestion.sources.{name}.{key}"


def test_the_registered_model_name_is_one_per_dataset():
    assert evaluation_params().model_name("mnist") == "gan-generator-mnist"


def test_the_shipped_training_parameters_parse_and_override_from_the_command_line_as_strings():
    shipped = yaml.safe_load((Path(__file__).parents[1] / "conf/base/parameters_training.yml").read_text())
    config = parse_params(TrainingParams, "training", shipped["training"])
    assert config.speed.compile == "auto" and config.resume == "auto" and config.checkpoint.every_epochs == 10
    overridden = parse_params(
        TrainingParams,
        "training",
        merged(shipped["training"], {"speed": {"compile": "false"}, "diff_augment": ["color"]}),
    )
    assert overridden.speed.compile is False and overridden.diff_augment == ("color",)


def test_training_parameters_build_the_core_settings_and_the_trajectory_a_checkpoint_must_match():
    config = parse_params(
        TrainingParams, "training", merged(base_parameters()["training"], {"generated_batch_size": None})
    )
    settings = config.settings()
    assert settings.fakes_per_step == config.batch_size  # null: as many as the real batch
    assert settings.speed.precision == config.speed.precision and settings.health.discriminator_win_steps == 200
    trajectory = config.trajectory(world_size=2, device_type="cpu")
    assert trajectory["epochs"] == config.epochs and (trajectory["world_size"], trajectory["device_type"]) == (2, "cpu")
    assert not {"device", "speed", "resume", "checkpoint", "health", "progress_bar"} & set(trajectory)


CONF = Path(__file__).parents[1] / "conf"
ENVIRONMENTS = sorted(path.name for path in CONF.iterdir() if path.is_dir() and path.name not in ("base", "local"))


def environment_parameters(env: str) -> RunParameters:
    loader = OmegaConfigLoader(
        conf_source=str(CONF), base_env="base", default_run_env=env, merge_strategy={"parameters": "soft"}
    )
    return validate_parameters(loader["parameters"])


@pytest.mark.filterwarnings("ignore:register_new_resolver:UserWarning")  # upstream omegaconf deprecation
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_validates_on_top_of_base_and_names_its_dataset(env):
    run = environment_parameters(env)
    assert env.startswith(run.data_ingestion.dataset)  # conf/<dataset>[_<variant>]
    assert run.training.speed.compile == "auto"  # keys the environment leaves alone come from base


@pytest.mark.filterwarnings("ignore:register_new_resolver:UserWarning")
def test_the_stabilised_environments_set_their_stabilisers():
    grid = environment_parameters("grid25_stabilised").training
    assert grid.preset == "mlp_2d" and (grid.loss, grid.r1_gamma, grid.ema_decay) == ("non_saturating", 1.0, 0.999)
    ring = environment_parameters("ring8_stabilised").training
    assert (ring.packing, ring.lr_decay_start, ring.ema_decay) == (2, 0.4, 0.0)
    stacked = environment_parameters("stacked_mnist")
    assert (stacked.training.preset, stacked.training.packing) == ("dcgan28", 2)
    assert stacked.evaluation.num_generated == 26000 and stacked.evaluation.judge.max_samples == 20000
