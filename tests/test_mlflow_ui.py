"""The MLflow UI as users see it, in a real browser: Debian's Chromium, headless, driven by Playwright.

Two tiny `kedro run`s log to a real `mlflow server` on 127.0.0.1; the link the run prints must open on the
training runs, and the compare view of the two runs must show their sample grids side by side. Screenshots
go to the test's temporary folder (kept by pytest for the last runs), never into the repository.
"""

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.kedro_project import copy_project, kedro
from tests.mlflow_server import running_mlflow_server

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is a dev dependency: make test installs it")

TINY = (
    "training.sample_every_epochs=1,training.log_every_steps=5,training.progress_bar=false,"
    "training.standing_statistics_batches=10,"
    "evaluation.judge.epochs=1,evaluation.num_generated=256,evaluation.register_model=false"
)
SCREEN = {"width": 1920, "height": 1080}  # narrower, MLflow 3.17 squeezes the compare view's file list to nothing


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> Iterator[tuple[str, list[str], list[str]]]:
    """(server URI, the UI links the two runs printed, their run ids), oldest first."""
    project = copy_project(tmp_path_factory.mktemp("project"))
    with running_mlflow_server(tmp_path_factory.mktemp("server")) as uri:
        links = []
        for epochs in (1, 2):
            result = kedro(project, "run", "--params", f"{TINY},training.epochs={epochs}", tracking_uri=uri)
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
            links.append(re.search(r"MLflow UI +(\S+)", result.stdout).group(1))
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name("gan-pipeline")
        runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
        yield uri, links, [run.info.run_id for run in runs]


@pytest.fixture
def page(tmp_path) -> Iterator["sync_api.Page"]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield browser.new_page(viewport=SCREEN)
        finally:
            browser.close()


def test_the_link_a_run_prints_opens_it_in_the_model_training_view(two_runs, page, tmp_path):
    uri, links, run_ids = two_runs
    assert links[1].startswith(f"{uri}/#/experiments/") and run_ids[1] in links[1]
    page.goto(links[1])
    sync_api.expect(page.get_by_text("digits-2ep").first).to_be_visible(timeout=60_000)
    sync_api.expect(page.get_by_text("training.epochs").first).to_be_visible()
    page.screenshot(path=tmp_path / "run.png")
    experiment_page = links[1].split("/runs/")[0] + "?workflowType=machine_learning"
    page.goto(experiment_page)
    for name in ("digits-1ep", "digits-2ep"):  # the runs table, not the GenAI overview of traces
        sync_api.expect(page.get_by_role("link", name=name)).to_be_visible(timeout=60_000)
    assert page.get_by_text("No data available for the selected time range").count() == 0
    page.screenshot(path=tmp_path / "experiment.png")


def test_the_compare_view_shows_both_sample_grids_side_by_side(two_runs, page, tmp_path):
    uri, links, run_ids = two_runs
    experiment_id = links[0].split("/#/experiments/")[1].split("/")[0]
    runs = ",".join(f'"{run_id}"' for run_id in run_ids)
    page.goto(f'{uri}/#/compare-runs?runs=[{runs}]&experiments=["{experiment_id}"]&workflowType=machine_learning')
    grid = page.locator("[data-testid=artifact-tree-node][artifact-name='evaluation_samples.png']")
    grid.click(timeout=60_000)
    previews = page.locator("img[src^='blob:']:visible")
    sync_api.expect(previews).to_have_count(2, timeout=60_000)
    widths = [preview.evaluate("image => image.complete && image.naturalWidth") for preview in previews.all()]
    sources = {preview.get_attribute("src") for preview in previews.all()}
    boxes = [preview.bounding_box() for preview in previews.all()]
    page.screenshot(path=tmp_path / "compare.png", full_page=True)
    assert all(width > 100 for width in widths), widths  # decoded PNGs, not broken-image icons
    assert len(sources) == 2  # one grid per run
    assert boxes[0]["y"] == boxes[1]["y"] and boxes[0]["x"] < boxes[1]["x"]  # side by side
    assert Path(tmp_path / "compare.png").stat().st_size > 0
