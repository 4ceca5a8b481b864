"""Networks <-> ``TensorFile`` (a safetensors file's content), with what rebuilds them in the header.

A weights file is self-describing: the generator can be rebuilt from it alone, and loading it never
executes code (no pickle). The judge's file is written and read in ``judge.py``.
"""

import json
from typing import Any

import numpy as np
import torch
from torch import nn

from gan_pipeline.gan.files import TensorFile
from gan_pipeline.gan.networks import AnyArchitecture, architecture_from_dict, build_generator


def module_to_tensors(module: nn.Module, **metadata: Any) -> TensorFile:
    """State dict as numpy arrays, plus string metadata for the file header."""
    arrays = {name: value.detach().cpu().contiguous().numpy() for name, value in module.state_dict().items()}
    return TensorFile(arrays, {key: str(value) for key, value in metadata.items()})


def load_state(module: nn.Module, tensors: TensorFile) -> nn.Module:
    module.load_state_dict({name: torch.from_numpy(np.asarray(value)) for name, value in tensors.arrays.items()})
    return module


def architecture_metadata(arch: AnyArchitecture) -> str:
    return json.dumps(arch.to_dict())


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(size for size in shape if size != 1)


class WeightsError(ValueError):
    """Weights that do not rebuild a generator: another network's file, or one without its architecture."""


def generator_from_tensors(tensors: TensorFile) -> nn.Module:
    """Rebuild a generator, in eval mode, from a weights file written by ``module_to_tensors``."""
    if "architecture" not in tensors.metadata:
        raise WeightsError("has no architecture in its header: it is not a generator's weights file")
    generator = build_generator(architecture_from_dict(json.loads(tensors.metadata["architecture"])))
    # Shapes without their 1s: a counter saved as a 0-d array may come back as shape (1,).
    expected = {name: _squeezed(value.shape) for name, value in generator.state_dict().items()}
    found = {name: _squeezed(np.shape(value)) for name, value in tensors.arrays.items()}
    if expected != found:
        missing, unexpected = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys())
        reshaped = sorted(name for name in expected.keys() & found.keys() if expected[name] != found[name])
        raise WeightsError(
            "does not hold the generator its header describes: "
            f"{len(missing)} weights missing {missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, "
            f"{len(reshaped)} of another shape {reshaped[:3]}"
        )
    return load_state(generator, tensors).eval()
