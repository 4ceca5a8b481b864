"""The image-size benchmark stays runnable: one row per side and channels, and the ingestion line."""

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "image_sizes.py"


def test_the_benchmark_prints_a_row_per_configuration_and_the_ingestion_figures(tmp_path):
    folder = tmp_path / "crops64"
    arguments = ["--sides", "16", "--steps", "1", "--folder", str(folder), "--folder-images", "12"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = re.findall(r"^cpu\s+16\s+([13])\s+dcgan16\s+([\d.]+)\s+(\d+)\s+-$", result.stdout, re.MULTILINE)
    assert [channels for channels, _, _ in rows] == ["1", "3"]
    assert all(float(images_per_s) > 0 and int(rss) > 0 for _, images_per_s, rss in rows)
    assert re.search(r"ingestion of 12 64x64 colour PNGs .*peak RSS \d+ MiB for a 12x3x64x64 array", result.stdout)
    assert len(list(folder.glob("*.png"))) == 12
