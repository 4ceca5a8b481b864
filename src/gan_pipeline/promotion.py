"""The promotion rule: does a challenger generator replace the champion? Plain data in, decision out.

The registry side (reading versions, moving aliases, recording decisions) is in ``registry.py``;
this module only compares numbers, so the rule is tested without a server.
"""

from dataclasses import dataclass
from typing import Literal

FRECHET_DISTANCE, CLASSES_COVERED = "frechet_distance", "classes_covered"
GATE_METRICS = (FRECHET_DISTANCE, CLASSES_COVERED)
# Version tags that must match for two generators' metrics to be comparable: the same data, scored
# by the same judge (its fingerprint covers the training split and the judge's parameters), on
# as many generated samples (the Frechet distance is biased by sample count).
COMPARABLE_ON = ("dataset", "judge_fingerprint", "num_generated")

Outcome = Literal["first_champion", "promoted", "kept", "forced"]


class PromotionRefused(RuntimeError):
    """The gate cannot compare the two generators; nothing in the registry was changed."""


@dataclass(frozen=True)
class Candidate:
    """A registered model version with its run's metrics and its own tags."""

    version: str
    run_id: str
    metrics: dict[str, float]
    tags: dict[str, str]

    def gate_metric(self, role: str, name: str) -> float:
        if name not in self.metrics:
            raise PromotionRefused(
                f"the {role} (version {self.version}, run {self.run_id}) has no metric {name!r}: it was not "
                f"evaluated by this pipeline's evaluation stage; evaluate it again or move the champion "
                f"alias by hand (`gan-pipeline promote --force`)"
            )
        return self.metrics[name]


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    challenger: Candidate
    champion: Candidate | None
    margin: float
    reason: str  # one sentence with the numbers, for version descriptions and logs

    @property
    def moves_champion(self) -> bool:
        return self.outcome != "kept"

    @property
    def required_frechet_distance(self) -> float | None:
        """What the challenger had to stay below; None without a champion to beat."""
        if self.champion is None or FRECHET_DISTANCE not in self.champion.metrics:
            return None
        return self.champion.metrics[FRECHET_DISTANCE] * (1 - self.margin)


def check_comparable(challenger: Candidate, champion: Candidate) -> None:
    """Refuse when the two versions were scored on different data, judges or sample counts."""
    for tag in COMPARABLE_ON:
        ours, theirs = challenger.tags.get(tag), champion.tags.get(tag)
        if ours is None or ours != theirs:
            raise PromotionRefused(
                f"cannot compare version {challenger.version} with champion version {champion.version}: "
                f"their {tag!r} differs ({ours!r} vs {theirs!r}); only generators scored on the same dataset, "
                f"by the same judge, on as many samples are compared. Register it under its own model, or "
                f"move the champion alias by hand (`gan-pipeline promote --force`)"
            )


def decide(challenger: Candidate, champion: Candidate | None, margin: float, force: bool = False) -> Decision:
    """Promote when the Frechet distance drops by at least ``margin`` (a fraction) and no class is lost.

    Raises ``PromotionRefused`` when the versions cannot be compared (unless ``force``).
    """
    if champion is not None and champion.version == challenger.version:
        raise PromotionRefused(f"version {challenger.version} already holds the champion alias")
    if force:
        return Decision("forced", challenger, champion, margin, f"forced by hand over {_describe(champion)}")
    distance = challenger.gate_metric("challenger", FRECHET_DISTANCE)
    covered = challenger.gate_metric("challenger", CLASSES_COVERED)
    if champion is None:
        reason = f"first champion: frechet_distance {distance:.4g}, classes_covered {covered:g}"
        return Decision("first_champion", challenger, None, margin, reason)
    check_comparable(challenger, champion)
    champion_distance = champion.gate_metric("champion", FRECHET_DISTANCE)
    champion_covered = champion.gate_metric("champion", CLASSES_COVERED)
    required = champion_distance * (1 - margin)
    closer, covers = distance < required, covered >= champion_covered
    numbers = (
        f"frechet_distance {distance:.4g} vs {champion_distance:.4g} of version {champion.version} "
        f"(needed < {required:.4g}, margin {margin:.0%}); classes_covered {covered:g} vs {champion_covered:g}"
    )
    if closer and covers:
        return Decision(
            "promoted", challenger, champion, margin, f"promoted over version {champion.version}: {numbers}"
        )
    failures = {"Frechet distance not lower by the margin": not closer, "covers fewer classes": not covers}
    why = " and ".join(text for text, failed in failures.items() if failed)
    return Decision("kept", challenger, champion, margin, f"not promoted ({why}): {numbers}")


def _describe(champion: Candidate | None) -> str:
    return "no earlier champion" if champion is None else f"version {champion.version}"
