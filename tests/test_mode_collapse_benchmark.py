"""The mode-collapse benchmark stays runnable: a row per seed, then the summary beside the published rows."""

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "mode_collapse.py"


def test_the_benchmark_scores_each_seed_and_prints_the_papers_rows_beside_the_mean(tmp_path):
    tiny = ["training.epochs=1", "data_ingestion.sources.ring8.num_samples=2048", f"data_ingestion.raw_dir={tmp_path}"]
    arguments = ["--benchmark", "ring8_stabilised", "--seeds", "0", "1", "--workers", "2"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *arguments, *(f"--set={setting}" for setting in tiny)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seeds = re.findall(r"^ring8_stabilised\s+base\s+(\d)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", result.stderr, re.M)
    assert [seed for seed, *_ in seeds] == ["0", "1"]
    assert all(0 <= float(modes) <= 8 and 0 <= float(share) <= 1 for _, modes, share, _ in seeds)
    assert re.search(r"^base\s+2\s+[\d.]+ ± [\d.]+", result.stdout, re.M)  # mean ± std over the two seeds
    assert re.search(r"^PacGAN2\s+published\s+7\.9\s+0\.956\s+0\.07", result.stdout, re.M)
