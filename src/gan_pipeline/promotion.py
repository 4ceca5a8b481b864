"""The promotion gate: does a challenger generator replace its dataset's champion?

``decide`` is the rule: plain data in, decision out, tested without a server. ``run_gate`` reads
the two versions through ``registry.py``, applies the rule, and records the decision there. It
reads everything first and writes only after deciding, so a refusal leaves the registry as it was.
"""

from dataclasses import dataclass
from typing import Literal

from gan_pipeline.errors import UserError
from gan_pipeline.registry import (
    COMPARABLE_ON,
    RESCORED_PREFIX,
    RESCORED_VERSION_TAG,
    Candidate,
    RegistryError,
    RegistryUnreachable,
    Verdict,
    gate_lock,
    read_candidates,
    record_decision,
    registry_client,
)
from gan_pipeline.tracking import bounded_http

FRECHET_DISTANCE, CLASSES_COVERED = "frechet_distance", "classes_covered"
UNTRAINED_FRECHET_DISTANCE = "frechet_distance_untrained"  # the first champion must beat the untrained generator
GATE_METRICS = (FRECHET_DISTANCE, CLASSES_COVERED)

Outcome = Literal["first_champion", "promoted", "kept", "forced"]


class PromotionRefused(UserError, RuntimeError):
    """The gate cannot compare the two generators; nothing in the registry was changed."""


def gate_metric(candidate: Candidate, role: str, name: str) -> float:
    if name not in candidate.metrics:
        raise PromotionRefused(
            f"the {role} (version {candidate.version}, run {candidate.run_id}) has no metric {name!r}: it was not "
            f"evaluated by this pipeline's evaluation stage; evaluate it again or move the champion "
            f"alias by hand (`gan-pipeline promote --force`)"
        )
    return candidate.metrics[name]


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
        """What the challenger had to stay below: the champion's distance, or the untrained generator's without
        a champion, less the margin; None with neither."""
        beaten = self.challenger.metrics if self.champion is None else self.champion.metrics
        reference = beaten.get(UNTRAINED_FRECHET_DISTANCE if self.champion is None else FRECHET_DISTANCE)
        return None if reference is None or self.outcome == "forced" else reference * (1 - self.margin)


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

    Data without classes (its judge learned rotations) has no ``classes_covered``: the Frechet distance
    alone decides. A champion scored on older data is compared through the challenger's rescoring of it
    (``as_rescored_by``). Raises ``PromotionRefused`` when the versions cannot be compared (unless ``force``).
    """
    if champion is not None and champion.version == challenger.version:
        raise PromotionRefused(f"version {challenger.version} already holds the champion alias")
    if force:
        return Decision("forced", challenger, champion, margin, f"forced by hand over {_describe(champion)}")
    distance = gate_metric(challenger, "challenger", FRECHET_DISTANCE)
    covered = challenger.metrics.get(CLASSES_COVERED)  # None: unlabelled data
    coverage = "" if covered is None else f", classes_covered {covered:g}"
    if champion is None:
        return first_champion(challenger, distance, coverage, margin)
    rescored = as_rescored_by(challenger, champion)
    scored_by = " (rescored by this evaluation's judge)" if rescored is not champion else ""
    champion = rescored
    check_comparable(challenger, champion)
    champion_distance = gate_metric(champion, "champion", FRECHET_DISTANCE)
    required = champion_distance * (1 - margin)
    closer, covers = distance < required, True
    numbers = (
        f"frechet_distance {distance:.4g} vs {champion_distance:.4g} of version {champion.version}{scored_by} "
        f"(needed < {required:.4g}, margin {margin:.0%})"
    )
    if covered is not None:
        champion_covered = gate_metric(champion, "champion", CLASSES_COVERED)
        covers = covered >= champion_covered
        numbers += f"; classes_covered {covered:g} vs {champion_covered:g}"
    if closer and covers:
        return Decision(
            "promoted", challenger, champion, margin, f"promoted over version {champion.version}: {numbers}"
        )
    failures = {"Frechet distance not lower by the margin": not closer, "covers fewer classes": not covers}
    why = " and ".join(text for text, failed in failures.items() if failed)
    return Decision("kept", challenger, champion, margin, f"not promoted ({why}): {numbers}")


def first_champion(challenger: Candidate, distance: float, coverage: str, margin: float) -> Decision:
    """With no champion, the challenger must beat its own untrained generator by the margin (when evaluated
    against it): a run too short to learn stays challenger instead of shipping noise."""
    untrained = challenger.metrics.get(UNTRAINED_FRECHET_DISTANCE)
    if untrained is not None and distance >= untrained * (1 - margin):
        return Decision(
            "kept",
            challenger,
            None,
            margin,
            f"not made the first champion: frechet_distance {distance:.4g} vs {untrained:.4g} of the untrained "
            f"generator (needed < {untrained * (1 - margin):.4g}, margin {margin:.0%}){coverage}",
        )
    return Decision(
        "first_champion", challenger, None, margin, f"first champion: frechet_distance {distance:.4g}{coverage}"
    )


def _describe(champion: Candidate | None) -> str:
    return "no earlier champion" if champion is None else f"version {champion.version}"


def verdict(decision: Decision) -> Verdict:
    """What the challenger version records: the outcome and the numbers it was judged on."""
    tags = {"promotion.margin": f"{decision.margin:g}"}
    for metric in (*GATE_METRICS, UNTRAINED_FRECHET_DISTANCE):
        if metric in decision.challenger.metrics:
            tags[f"promotion.{metric}"] = f"{decision.challenger.metrics[metric]:.6g}"
        if decision.champion is not None and metric in GATE_METRICS and metric in decision.champion.metrics:
            tags[f"promotion.champion_{metric}"] = f"{decision.champion.metrics[metric]:.6g}"
    if decision.champion is not None:
        tags["promotion.compared_with_version"] = decision.champion.version
        if decision.challenger.tags.get(RESCORED_VERSION_TAG) == decision.champion.version:
            tags["promotion.champion_rescored"] = "true"
    if decision.required_frechet_distance is not None:
        tags["promotion.required_frechet_distance"] = f"{decision.required_frechet_distance:.6g}"
    return Verdict(decision.outcome, decision.moves_champion, decision.reason, tags)


def run_gate(
    name: str,
    version: str | None,
    margin: float,
    *,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    force: bool = False,
    timeout_s: int,
    max_retries: int,
    lock_wait_s: float,
) -> Decision:
    """Compare ``version`` (default: the challenger) of ``name`` with its champion and act on it.

    ``tracking_uri`` and ``registry_uri`` default to the ones this process logs to. One gate of ``name``
    decides at a time (``gate_lock``, waiting up to ``lock_wait_s``), so two never read the same champion.
    Raises ``PromotionRefused`` with the reason, having changed nothing, when the registry cannot be read
    or the two versions cannot be compared.
    """
    client = registry_client(tracking_uri, registry_uri)
    with bounded_http(timeout_s, max_retries):
        try:
            with gate_lock(client, name, lock_wait_s):
                challenger, champion = read_candidates(client, name, version)
                decision = decide(challenger, champion, margin, force=force)
                record_decision(client, name, decision.challenger, decision.champion, verdict(decision))
        except RegistryUnreachable as err:
            raise PromotionRefused(
                f"{err} (each request waited at most {timeout_s} s, {max_retries} retries)"
            ) from None
        except RegistryError as err:
            raise PromotionRefused(str(err)) from None
    return decision
