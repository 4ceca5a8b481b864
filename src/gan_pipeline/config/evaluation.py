"""``evaluation``: the judge, how generated samples are scored, and where the generator is registered."""

from typing import Literal

from pydantic import Field, PositiveInt, field_validator

from gan_pipeline.config.base import Params, known_device
from gan_pipeline.gan.settings import JudgeSettings, ScoringSettings

# As many sample-pixels as 32 draws of the digits' 1,437 8x8 images: frechet_draws ``auto`` keeps the
# evaluation's cost there, so 64x64 colour images get one draw where digits get 32.
DRAW_BUDGET_PIXELS = 32 * 1437 * 8 * 8
MAX_DRAWS = 32


class JudgeParams(Params):
    task: Literal["classes", "rotation", "channels", "auto"]
    epochs: PositiveInt
    batch_size: PositiveInt
    learning_rate: float = Field(gt=0)
    feature_dim: PositiveInt
    seed: int
    max_samples: PositiveInt | None

    def resolved_task(self, num_classes: int, stacked: bool) -> str:
        """``auto``: each channel's class for stacked data, else the data's classes when it has two or more,
        else rotations (unlabelled data)."""
        if self.task != "auto":
            return self.task
        return "channels" if stacked else "classes" if num_classes >= 2 else "rotation"

    def settings(self, task: str, progress_bar: bool) -> JudgeSettings:
        return JudgeSettings(**self.model_dump(exclude={"task", "max_samples"}), task=task, progress_bar=progress_bar)


class EvaluationParams(Params):
    judge: JudgeParams
    num_generated: PositiveInt | Literal["match_train"]
    frechet_draws: PositiveInt | Literal["auto"]
    synthetic_num_samples: PositiveInt
    confidence_threshold: float = Field(gt=0, lt=1)
    nearest_k: PositiveInt
    precision_recall_samples: PositiveInt
    inception_score_splits: PositiveInt
    memorisation_samples: PositiveInt
    interpolation_rows: PositiveInt
    interpolation_steps: int = Field(ge=2)
    nearest_neighbour_rows: PositiveInt
    seed: int
    device: str
    registered_model_name: str
    register_model: bool
    progress_bar: bool
    inception: bool
    inception_weights: str | None

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
            precision_recall_samples=self.precision_recall_samples,
            inception_score_splits=self.inception_score_splits,
            memorisation_samples=self.memorisation_samples,
            seed=self.seed,
            progress_bar=self.progress_bar,
        )

    def draws(self, num_generated: int, sample_size: int) -> int:
        """Independent draws of ``num_generated`` samples of ``sample_size`` values the Frechet distance averages."""
        if self.frechet_draws != "auto":
            return self.frechet_draws
        return max(1, min(MAX_DRAWS, round(DRAW_BUDGET_PIXELS / (num_generated * sample_size))))
