"""``evaluation``: the judge, how generated samples are scored, and where the generator is registered."""

from typing import Literal

from pydantic import Field, PositiveInt, field_validator

from gan_pipeline.config.base import Params, known_device
from gan_pipeline.gan.settings import JudgeSettings, ScoringSettings


class JudgeParams(Params):
    epochs: PositiveInt
    batch_size: PositiveInt
    learning_rate: float = Field(gt=0)
    feature_dim: PositiveInt
    seed: int

    def settings(self) -> JudgeSettings:
        return JudgeSettings(**self.model_dump())


class EvaluationParams(Params):
    judge: JudgeParams
    num_generated: PositiveInt | Literal["match_train"]
    frechet_draws: PositiveInt
    synthetic_num_samples: PositiveInt
    confidence_threshold: float = Field(gt=0, lt=1)
    nearest_k: PositiveInt
    inception_score_splits: PositiveInt
    memorisation_samples: PositiveInt
    interpolation_rows: PositiveInt
    interpolation_steps: int = Field(ge=2)
    nearest_neighbour_rows: PositiveInt
    seed: int
    device: str
    registered_model_name: str
    register_model: bool

    _device_name = field_validator("device")(known_device)

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

    def scoring(self) -> ScoringSettings:
        return ScoringSettings(
            confidence_threshold=self.confidence_threshold,
            nearest_k=self.nearest_k,
            inception_score_splits=self.inception_score_splits,
            memorisation_samples=self.memorisation_samples,
            seed=self.seed,
        )
