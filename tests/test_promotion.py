"""The promotion rule on plain numbers: margin, mode coverage, and the refusals."""

import pytest

from gan_pipeline.promotion import Candidate, PromotionRefused, decide

TAGS = {"dataset": "digits", "judge_fingerprint": "abc", "num_generated": "1437"}


def candidate(version: str, distance: float | None = 10.0, covered: float = 10, **tags: str) -> Candidate:
    metrics = {"classes_covered": covered} | ({} if distance is None else {"frechet_distance": distance})
    return Candidate(version, f"run{version}", metrics, TAGS | tags)


def test_the_first_generator_becomes_champion():
    decision = decide(candidate("1"), None, margin=0.02)
    assert decision.outcome == "first_champion" and decision.moves_champion
    assert "frechet_distance 10" in decision.reason


@pytest.mark.parametrize(("untrained", "outcome"), [(10.1, "kept"), (10.3, "first_champion")])
def test_the_first_champion_must_beat_its_untrained_generator_by_the_margin(untrained, outcome):
    """A run too short to learn (FD 10 against 10.1 untrained) stays challenger instead of shipping noise."""
    challenger = candidate("1")
    challenger.metrics["frechet_distance_untrained"] = untrained
    decision = decide(challenger, None, margin=0.02)
    assert decision.outcome == outcome
    assert decision.required_frechet_distance == pytest.approx(untrained * 0.98)
    if outcome == "kept":
        assert not decision.moves_champion
        assert f"frechet_distance 10 vs {untrained:g} of the untrained generator" in decision.reason


def test_a_challenger_lower_by_the_margin_with_as_many_classes_is_promoted():
    decision = decide(candidate("2", distance=9.7), candidate("1", distance=10.0), margin=0.02)
    assert decision.outcome == "promoted" and decision.moves_champion
    assert decision.required_frechet_distance == pytest.approx(9.8)
    assert "9.7 vs 10 of version 1" in decision.reason and "needed < 9.8" in decision.reason


def test_a_challenger_lower_by_less_than_the_margin_is_not_promoted():
    decision = decide(candidate("2", distance=9.9), candidate("1", distance=10.0), margin=0.02)
    assert decision.outcome == "kept" and not decision.moves_champion
    assert "not lower by the margin" in decision.reason


def test_a_closer_challenger_that_loses_a_class_is_not_promoted():
    decision = decide(candidate("2", distance=5.0, covered=9), candidate("1", distance=10.0), margin=0.02)
    assert decision.outcome == "kept"
    assert "covers fewer classes" in decision.reason and "not lower" not in decision.reason


def test_a_champion_without_the_metric_is_refused_with_the_fix():
    with pytest.raises(PromotionRefused, match=r"champion \(version 1, run run1\) has no metric 'frechet_distance'"):
        decide(candidate("2"), candidate("1", distance=None), margin=0.02)


@pytest.mark.parametrize("tag", ["dataset", "judge_fingerprint", "num_generated"])
def test_versions_scored_on_other_data_or_by_another_judge_are_not_compared(tag):
    with pytest.raises(PromotionRefused, match=rf"their '{tag}' differs \('{TAGS[tag]}' vs 'other'\)"):
        decide(candidate("2", distance=1.0), candidate("1", **{tag: "other"}), margin=0.02)


def test_the_champion_cannot_challenge_itself():
    with pytest.raises(PromotionRefused, match="already holds the champion alias"):
        decide(candidate("1"), candidate("1"), margin=0.02)


def test_force_moves_the_champion_without_comparing():
    decision = decide(candidate("2", distance=None), candidate("1", dataset="other"), margin=0.02, force=True)
    assert decision.outcome == "forced" and decision.moves_champion


def rescoring(challenger: Candidate, of_version: str, distance: float, covered: float = 10) -> Candidate:
    """``challenger`` as an evaluation that also scored champion ``of_version`` with its own judge leaves it."""
    metrics = challenger.metrics | {"champion.frechet_distance": distance, "champion.classes_covered": covered}
    return Candidate(
        challenger.version, challenger.run_id, metrics, challenger.tags | {"rescored_champion_version": of_version}
    )


def test_a_champion_judged_on_older_data_is_compared_through_the_challengers_rescoring():
    champion = candidate("1", distance=3.0, judge_fingerprint="old")  # its own number, by another judge: not used
    challenger = rescoring(candidate("2", distance=9.0), "1", distance=10.0)
    decision = decide(challenger, champion, margin=0.02)
    assert decision.outcome == "promoted"
    assert decision.champion.metrics == {"frechet_distance": 10.0, "classes_covered": 10}
    assert "9 vs 10 of version 1 (rescored by this evaluation's judge)" in decision.reason
    kept = decide(rescoring(candidate("2", distance=9.0), "1", distance=9.1), champion, margin=0.02)
    assert kept.outcome == "kept"


def test_a_rescoring_of_another_version_does_not_stand_in_for_the_champion():
    challenger = rescoring(candidate("3", distance=1.0), "1", distance=10.0)
    with pytest.raises(PromotionRefused, match=r"'judge_fingerprint' differs .* did not rescore the champion"):
        decide(challenger, candidate("2", judge_fingerprint="old"), margin=0.02)
