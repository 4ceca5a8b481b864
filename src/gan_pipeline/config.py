"""Typed, validated parameters for every pipeline.

Kedro hands each node a plain dict from ``conf/base/parameters_*.yml``; these models turn it
into typed settings and reject bad values before any work starts, naming the key at fault.
"""

import re
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveInt,
    ValidationError,
    field_validator,
)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestionParams(Params):
    dataset: str = "digits"
    raw_dir: str = "data/01_raw"
    sources: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        from gan_pipeline.datasets import DATASETS

        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; allowed: {sorted(DATASETS)}")
        return name

    @property
    def source_options(self) -> dict[str, Any]:
        return self.sources.get(self.dataset) or {}


class ProcessingParams(Params):
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0


DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
AutoOrBool = Literal["auto"] | bool


class SpeedParams(Params):
    """GPU speed options; ``auto`` turns each on for CUDA and off elsewhere."""

    precision: Literal["auto", "bf16", "fp32"] = "auto"
    channels_last: AutoOrBool = "auto"
    compile: AutoOrBool = "auto"
    cudnn_benchmark: AutoOrBool = "auto"


class CheckpointParams(Params):
    directory: str = "data/06_models/checkpoints"
    every_epochs: int = Field(10, ge=0)
    keep: PositiveInt = 2


class HealthParams(Params):
    discriminator_win_score: float = Field(0.02, gt=0, lt=1)
    discriminator_win_steps: PositiveInt = 200


class TrainingParams(Params):
    preset: str = "auto"
    architecture: dict[str, Any] = Field(default_factory=dict)
    loss: str = "non_saturating"
    gradient_penalty_weight: float = Field(10.0, gt=0)
    r1_gamma: float = Field(0.0, ge=0)
    spectral_norm: bool = False
    discriminator_steps: PositiveInt = 1
    diff_augment: tuple[str, ...] = ()
    epochs: PositiveInt = 60
    batch_size: PositiveInt = 64
    # None: as many as batch_size. BatchNorm in G needs at least two.
    generated_batch_size: int | None = Field(None, ge=2)
    generator_lr: float = Field(2e-4, gt=0)
    discriminator_lr: float = Field(2e-4, gt=0)
    lr_decay_start: float = Field(1.0, ge=0, le=1)
    betas: tuple[float, float] = (0.5, 0.999)
    ema_decay: float = Field(0.999, ge=0, lt=1)
    standing_statistics_batches: int = Field(200, ge=0)
    seed: int = 0
    device: str = "auto"
    distributed_backend: Literal["auto", "nccl", "gloo"] = "auto"
    speed: SpeedParams = Field(default_factory=SpeedParams)
    resume: Literal["auto", "never"] = "auto"
    checkpoint: CheckpointParams = Field(default_factory=CheckpointParams)
    health: HealthParams = Field(default_factory=HealthParams)
    log_every_steps: PositiveInt = 10
    sample_every_epochs: PositiveInt = 10
    num_fixed_samples: PositiveInt = 64
    progress_bar: bool = True
    system_metrics_interval_s: NonNegativeFloat = 10.0

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, name: str) -> str:
        from gan_pipeline.gan.networks import PRESETS

        if name != "auto" and name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; allowed: {['auto', *PRESETS]}")
        return name

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, name: str) -> str:
        from gan_pipeline.gan.losses import LOSSES

        if name not in LOSSES:
            raise ValueError(f"unknown loss {name!r}; allowed: {sorted(LOSSES)}")
        return name

    @field_validator("device")
    @classmethod
    def _device_name(cls, name: str) -> str:
        if not DEVICE_PATTERN.fullmatch(name):
            raise ValueError(f"unknown device {name!r}; allowed: auto | cpu | cuda | cuda:N | mps")
        return name

    @field_validator("diff_augment")
    @classmethod
    def _known_augmentations(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from gan_pipeline.gan.augment import AUGMENTATIONS

        unknown = [name for name in names if name not in AUGMENTATIONS]
        if unknown:
            raise ValueError(f"unknown augmentations {unknown}; allowed: {sorted(AUGMENTATIONS)}")
        return names

    @field_validator("architecture")
    @classmethod
    def _known_fields(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        from gan_pipeline.gan.networks import architecture_fields

        allowed = architecture_fields()
        unknown = set(overrides) - allowed
        if unknown:
            raise ValueError(f"unknown architecture fields {sorted(unknown)}; allowed: {sorted(allowed)}")
        return overrides

    @property
    def fakes_per_step(self) -> int:
        """Samples G generates for each D update and for its own (``generated_batch_size``, else ``batch_size``)."""
        return self.generated_batch_size or self.batch_size

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, betas: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= beta < 1 for beta in betas):
            raise ValueError(f"Adam betas must be in [0, 1), got {list(betas)}")
        return betas


class JudgeParams(Params):
    epochs: PositiveInt = 30
    batch_size: PositiveInt = 64
    learning_rate: float = Field(1e-3, gt=0)
    feature_dim: PositiveInt = 64
    seed: int = 0


class EvaluationParams(Params):
    judge: JudgeParams = Field(default_factory=JudgeParams)
    num_generated: PositiveInt | Literal["match_train"] = "match_train"
    frechet_draws: PositiveInt = 32
    synthetic_num_samples: PositiveInt = 2500
    confidence_threshold: float = Field(0.9, gt=0, lt=1)
    nearest_k: PositiveInt = 5
    inception_score_splits: PositiveInt = 10
    memorisation_samples: PositiveInt = 2000
    interpolation_rows: PositiveInt = 6
    interpolation_steps: int = Field(10, ge=2)
    nearest_neighbour_rows: PositiveInt = 8
    seed: int = 1234
    device: str = "auto"
    registered_model_name: str = "gan-generator-{dataset}"
    register_model: bool = True

    @field_validator("registered_model_name")
    @classmethod
    def _only_dataset_placeholder(cls, template: str) -> str:
        try:
            name = template.format(dataset="digits")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"the only placeholder allowed is {{dataset}} ({err!r})") from None
        if not name.strip():
            raise ValueError("must not be empty")
        return template

    def model_name(self, dataset: str) -> str:
        """The registered model for ``dataset``: one per dataset, so champions never mix datasets."""
        return self.registered_model_name.format(dataset=dataset)


class PromotionParams(Params):
    enabled: bool = True
    frechet_distance_margin: float = Field(0.02, ge=0, lt=1)
    request_timeout_s: PositiveInt = 10
    max_retries: int = Field(2, ge=0, le=10)


class ParameterError(ValueError):
    """Invalid parameters, reported with the full key path of each problem."""


ParamsT = TypeVar("ParamsT", bound=Params)


def parse_params(model: type[ParamsT], section: str, values: dict[str, Any] | None) -> ParamsT:
    """Validate ``values`` (the ``section`` of the parameters) or raise ``ParameterError``."""
    try:
        return model.model_validate(values or {})
    except ValidationError as err:
        problems = []
        for error in err.errors():
            key = ".".join([section, *(str(part) for part in error["loc"])])
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"  {key}: {message} (got {error.get('input')!r})")
        raise ParameterError(
            "invalid parameters in conf/base/parameters_*.yml or --params:\n" + "\n".join(problems)
        ) from None


PARAM_SEP = "."  # also kedro-mlflow's `params.dict_params.sep` in conf/base/mlflow.yml


def flatten_params(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections as dotted keys (``training.epochs``): the names kedro-mlflow logs and DVC tracks."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):  # an empty section leaves no key, as in kedro-mlflow
            flat.update(flatten_params(value, f"{name}{PARAM_SEP}"))
        else:
            flat[name] = value
    return flat
