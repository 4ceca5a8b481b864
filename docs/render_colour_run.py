"""Re-render docs/colour_run.png: the real crops beside the champion's samples, after the README's quick colour run.

.venv/bin/python docs/render_colour_run.py <project where the run was made>
"""

import argparse
from pathlib import Path

import mlflow
import torch
from matplotlib.figure import Figure
from PIL import Image

from gan_pipeline.io import SplitDataset
from gan_pipeline.plots import draw_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("project", type=Path)
    parser.add_argument("--model", default="gan-generator-photos")
    args = parser.parse_args()
    real = SplitDataset(str(args.project / "data" / "05_model_input" / "train_set.safetensors")).load().samples[:64]
    mlflow.set_tracking_uri(f"sqlite:///{args.project / 'mlflow.db'}")
    generated = mlflow.pyfunc.load_model(f"models:/{args.model}@champion").predict({"num_samples": 64, "seed": 1234})
    figure = Figure(figsize=(10, 5.3))
    panels = [(real, "Real: 32x32 crops of the two photos"), (generated, "Generated (champion)")]
    for index, (images, title) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, 2, index)
        draw_samples(axes, torch.as_tensor(images), None)
        axes.set_title(title)
    figure.tight_layout()
    target = Path(__file__).with_name("colour_run.png")
    figure.savefig(target, dpi=90)
    Image.open(target).convert("RGB").quantize(256).save(target, optimize=True)  # a third of the size


if __name__ == "__main__":
    main()
