"""The promotion gate against a real `mlflow server`: aliases move, decisions are recorded, refusals change nothing."""

import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from gan_pipeline.console import cli
from gan_pipeline.promotion import Decision, PromotionRefused, run_gate
from tests.mlflow_server import free_port

pytestmark = pytest.mark.slow

TAGS = {"dataset": "digits", "judge_fingerprint": "f00d", "num_generated": "1437"}


@pytest.fixture
def client(mlflow_server) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_server)


@pytest.fixture
def name(client) -> str:
    model_name = f"gate-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(model_name)
    return model_name


def register(client: MlflowClient, name: str, metrics: dict[str, float], **tags: str) -> str:
    """A finished run with ``metrics``, registered as a new version of ``name`` holding the challenger alias."""
    experiment = client.get_experiment_by_name("gate") or client.get_experiment(client.create_experiment("gate"))
    run = client.create_run(experiment.experiment_id)
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(
        name, source=f"{run.info.artifact_uri}/generator", run_id=run.info.run_id, tags=TAGS | tags
    ).version
    client.set_registered_model_alias(name, "challenger", version)
    return str(version)


def gate(
    tracking_uri: str, name: str, timeout_s: int = 10, max_retries: int = 2, version: str | None = None
) -> Decision:
    """The gate on the challenger with the project's default margin, against ``tracking_uri``."""
    return run_gate(
        name, version, 0.02, tracking_uri=tracking_uri, timeout_s=timeout_s, max_retries=max_retries, lock_wait_s=30
    )


def registry_state(client: MlflowClient, name: str) -> dict:
    versions = client.search_model_versions(f"name='{name}'")
    return {
        "aliases": dict(client.get_registered_model(name).aliases),
        "versions": {v.version: (dict(v.tags), v.description) for v in versions},
    }


def test_the_first_version_becomes_champion_and_a_better_one_takes_the_alias(client, name, mlflow_server):
    first = register(client, name, {"frechet_distance": 10.0, "classes_covered": 10})
    assert gate(mlflow_server, name).outcome == "first_champion"
    second = register(client, name, {"frechet_distance": 8.0, "classes_covered": 10})

    decision = gate(mlflow_server, name)

    assert decision.outcome == "promoted"
    assert client.get_registered_model(name).aliases == {"champion": second, "challenger": second}
    winner, loser = client.get_model_version(name, second), client.get_model_version(name, first)
    assert winner.tags["promotion.decision"] == "promoted"
    assert winner.tags["promotion.compared_with_version"] == first
    assert float(winner.tags["promotion.frechet_distance"]) == 8.0
    assert float(winner.tags["promotion.champion_frechet_distance"]) == 10.0
    assert float(winner.tags["promotion.required_frechet_distance"]) == pytest.approx(9.8)
    assert "promoted over version" in winner.description
    assert loser.tags["promotion.replaced_by_version"] == second
    assert loser.tags[f"promotion.challenged_by_v{second}"] == "promoted"
    assert loser.description.splitlines()[0].endswith("first champion: frechet_distance 10, classes_covered 10")
    assert f"challenged by version {second}" in loser.description.splitlines()[-1]


def test_a_worse_challenger_leaves_the_champion_where_it_was(client, name, mlflow_server):
    first = register(client, name, {"frechet_distance": 10.0, "classes_covered": 10})
    gate(mlflow_server, name)
    second = register(client, name, {"frechet_distance": 9.9, "classes_covered": 10})

    decision = gate(mlflow_server, name)

    assert decision.outcome == "kept"
    assert client.get_registered_model(name).aliases == {"champion": first, "challenger": second}
    assert client.get_model_version(name, second).tags["promotion.decision"] == "kept"
    assert client.get_model_version(name, first).tags[f"promotion.challenged_by_v{second}"] == "kept"


@pytest.mark.parametrize(
    ("champion_metrics", "champion_tags", "message"),
    [
        ({"classes_covered": 10}, {}, r"champion \(version \d+, run \w+\) has no metric 'frechet_distance'"),
        ({"frechet_distance": 10.0, "classes_covered": 10}, {"dataset": "mnist"}, r"their 'dataset' differs"),
    ],
)
def test_the_gate_refuses_and_leaves_the_registry_unchanged(
    client, name, mlflow_server, champion_metrics, champion_tags, message
):
    champion = register(client, name, champion_metrics, **champion_tags)
    client.set_registered_model_alias(name, "champion", champion)
    register(client, name, {"frechet_distance": 1.0, "classes_covered": 10})
    before = registry_state(client, name)

    with pytest.raises(PromotionRefused, match=message):
        gate(mlflow_server, name)

    assert registry_state(client, name) == before


def test_gates_deciding_at_once_take_turns_and_crown_one_champion(client, name, mlflow_server):
    """Four gates started together: without the lock each reads "no champion" and all four become first champions."""
    distances = {register(client, name, {"frechet_distance": fd, "classes_covered": 10}): fd for fd in (9, 6, 8, 4)}
    start = threading.Barrier(len(distances))

    def gate_together(version: str) -> Decision:
        start.wait()
        return gate(mlflow_server, name, version=version)

    with ThreadPoolExecutor(len(distances)) as pool:
        decisions = list(pool.map(gate_together, distances))

    outcomes = [decision.outcome for decision in decisions]
    assert outcomes.count("first_champion") == 1
    best = min(distances, key=distances.get)
    assert client.get_registered_model(name).aliases["champion"] == best  # whatever order the gates took
    versions = {v.version: v.tags for v in client.search_model_versions(f"name='{name}'")}
    assert all("promotion.decision" in tags for tags in versions.values())
    for decision in decisions:  # each compared with the champion of its turn, never a stale one
        if decision.champion is not None:
            assert versions[decision.champion.version]["promotion.decision"] in ("first_champion", "promoted")
    assert [m.name for m in client.search_registered_models() if m.name.endswith(".gate-lock")] == []


def test_a_lock_left_by_a_dead_gate_is_broken_after_the_wait(client, name, mlflow_server):
    register(client, name, {"frechet_distance": 10.0, "classes_covered": 10})
    client.create_registered_model(f"{name}.gate-lock", tags={"holder": "gone-host:1"})
    started = time.monotonic()
    decision = run_gate(name, None, 0.02, tracking_uri=mlflow_server, timeout_s=10, max_retries=2, lock_wait_s=1)
    assert decision.outcome == "first_champion"
    assert 1 <= time.monotonic() - started < 10


def test_the_gate_gives_up_on_a_refused_connection_with_a_clear_message():
    started = time.monotonic()
    with pytest.raises(PromotionRefused, match=r"could not read the model registry at http://127\.0\.0\.1"):
        gate(f"http://127.0.0.1:{free_port()}", "any", timeout_s=1, max_retries=1)
    assert time.monotonic() - started < 30


def test_the_gate_times_out_on_a_server_that_never_answers():
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) but never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(PromotionRefused, match=r"(?s)timeout.*each request waited at most 1 s, 1 retries"):
            gate(uri, "any", timeout_s=1, max_retries=1)
        assert time.monotonic() - started < 30


def test_promote_by_hand_prints_the_decision_or_exits_non_zero_on_refusal(client, name, mlflow_server):
    register(client, name, {"frechet_distance": 10.0, "classes_covered": 10})
    runner = CliRunner()

    promoted = runner.invoke(cli, ["promote", "--model", name, "--tracking-uri", mlflow_server])
    assert promoted.exit_code == 0, promoted.output
    assert f"{name} version 1: first_champion" in promoted.output

    refused = runner.invoke(cli, ["promote", "--model", name, "--version", "1", "--tracking-uri", mlflow_server])
    assert refused.exit_code == 1
    assert "promotion refused, registry unchanged: version 1 already holds the champion alias" in refused.output
