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
# When new data changes the judge, the challenger's evaluation scores the champion's generator again
# with the new judge, on the same data and sample count: it logs the champion's metrics under this
# prefix and names the version it scored in this tag. The gate compares those numbers instead.
RESCORED_PREFIX, RESCORED_VERSION_TAG = "champion.", "rescored_champion_version"

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
                f"their {tag!r} differs ({ours!r} vs {theirs!r}) and the challenger's evaluation did not rescore "
                f"the champion (see its log); only generators scored on the same dataset, by the same judge, on "
                f"as many samples are compared. Register it under its own model, or move the champion alias by "
                f"hand (`gan-pipeline promote --force`)"
            )


def as_rescored_by(challenger: Candidate, champion: Candidate) -> Candidate:
    """The champion as the challenger's evaluation scored it, if it did; otherwise as it is."""
    if challenger.tags.get(RESCORED_VERSION_TAG) != champion.version:
        return champion
    metrics = {
        key.removeprefix(RESCORED_PREFIX): value
        for key, value in challenger.metrics.items()
        if key.startswith(RESCORED_PREFIX)
    }
    scored_like = {tag: challenger.tags[tag] for tag in COMPARABLE_ON if tag in challenger.tags}
    return Candidate(champion.version, champion.run_id, metrics, {**champion.tags, **scored_like})


def decide(challenger: Candidate, champion: Candidate | None, margin: float, force: bool = False) -> Decision:
    """Promote when the Frechet distance drops by at least ``margin`` (a fraction) and no class is lost.

    A champion scored on older data is compared through the challenger's rescoring of it
    (``as_rescored_by``). Raises ``PromotionRefused`` when the versions cannot be compared (unless ``force``).
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
    rescored = as_rescored_by(challenger, champion)
    scored_by = " (rescored by this evaluation's judge)" if rescored is not champion else ""
    champion = rescored
    check_comparable(challenger, champion)
    champion_distance = champion.gate_metric("champion", FRECHET_DISTANCE)
    champion_covered = champion.gate_metric("champion", CLASSES_COVERED)
    required = champion_distance * (1 - margin)
    closer, covers = distance < required, covered >= champion_covered
    numbers = (
        f"frechet_distance {distance:.4g} vs {champion_distance:.4g} of version {champion.version}{scored_by} "
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
