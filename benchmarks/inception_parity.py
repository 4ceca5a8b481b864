"""Parity of `gan/inception.py` with torch-fidelity's Inception-v3 (the port torchmetrics uses too).

Both networks load the same weights file and score the same 8-bit images, grey and colour, at several
sides; the script prints the largest feature difference beside the features' scale, then the FID of two
sets of random images as each network's features give it. Without
``--weights`` it makes a file of random values with BatchNorm statistics measured on random images
(so every layer's output stays varied), as the tests do; with the reference file the figures are
the ones that matter for published comparisons.

torch-fidelity's package imports torchvision, which has no CPU build here: the script imports only its
feature-extractor modules from an installed or unpacked copy (``pip download torch-fidelity==0.4.0
--no-deps`` and unzip the wheel):

    .venv/bin/python benchmarks/inception_parity.py --torch-fidelity /tmp/tf/torch_fidelity [--weights FILE]
"""

import argparse
import sys
import tempfile
import types
from pathlib import Path

import torch

from gan_pipeline.gan.inception import InceptionFeatures, load_inception
from gan_pipeline.gan.metrics import frechet_distance_of_features

SHAPES = ((1, 28), (3, 32), (3, 64), (1, 128))


def random_weights(folder: Path) -> Path:
    """Random values, BatchNorm statistics of random images (the tests' file)."""
    torch.manual_seed(0)
    network = InceptionFeatures().train()
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None
    with torch.no_grad():
        network(torch.rand(8, 3, 16, 16) * 2 - 1)
    path = folder / "random_inception.pth"
    torch.save(network.state_dict(), path)
    return path


def torch_fidelity_extractor(package: Path, weights: Path) -> torch.nn.Module:
    """torch-fidelity's ``inception-v3-compat`` extractor of pool3 features, without its package ``__init__``."""
    stub = types.ModuleType("torch_fidelity")
    stub.__path__ = [str(package)]
    sys.modules["torch_fidelity"] = stub
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    return FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights))


def uint8_rgb(images: torch.Tensor) -> torch.Tensor:
    """torch-fidelity's input: 8-bit RGB."""
    return ((images + 1) * 127.5).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch-fidelity", type=Path, required=True, help="the torch_fidelity package folder")
    parser.add_argument("--weights", type=Path, help="a weights file (default: random values)")
    parser.add_argument("--images", type=int, default=4, help="images per shape")
    parser.add_argument("--fid-images", type=int, default=64, help="images per set for the FID comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        weights = args.weights or random_weights(Path(folder))
        reference, ours = torch_fidelity_extractor(args.torch_fidelity, weights), load_inception(weights)
    print(f"weights: {args.weights or 'random values'}")
    print(f"{'channels':>8} {'side':>5} {'max |difference|':>17} {'mean |feature|':>15}")
    for channels, side in SHAPES:
        images = torch.rand(args.images, channels, side, side, generator=torch.Generator().manual_seed(side)) * 2 - 1
        (theirs,) = reference(uint8_rgb(images))
        mine = ours(images)
        print(f"{channels:>8} {side:>5} {(theirs - mine).abs().max().item():17.2e} {theirs.abs().mean().item():15.3e}")
    first, second = (
        torch.rand(args.fid_images, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1 for seed in (1, 2)
    )
    distances = {}
    for name, features in (("torch-fidelity", lambda x: reference(uint8_rgb(x))[0]), ("gan-pipeline", ours)):
        (distances[name],) = frechet_distance_of_features(features(first), [features(second)])
    difference = abs(distances["gan-pipeline"] - distances["torch-fidelity"]) / distances["torch-fidelity"]
    print(
        f"\nFID of two sets of {args.fid_images} random 32x32 colour images: "
        + ", ".join(f"{name} {value:.6g}" for name, value in distances.items())
        + f" (relative difference {difference:.1e})"
    )


if __name__ == "__main__":
    main()
