"""Networks <-> flat tensor dicts for safetensors files, with the architecture in the header.

A weights file is self-describing: the generator can be rebuilt from it alone, and loading
it never executes code (no pickle).
"""

import json
from typing import Any

import numpy as np
import torch
from torch import nn

from gan_pipeline.gan.networks import AnyArchitecture, architecture_from_dict, build_generator

METADATA = "__metadata__"


def module_to_tensors(module: nn.Module, **metadata: str) -> dict[str, Any]:
    """State dict as numpy arrays, plus string metadata for the file header."""
    tensors: dict[str, Any] = {
        name: value.detach().cpu().contiguous().numpy() for name, value in module.state_dict().items()
    }
    tensors[METADATA] = {key: str(value) for key, value in metadata.items()}
    return tensors


def load_state(module: nn.Module, tensors: dict[str, Any]) -> nn.Module:
    state = {name: torch.from_numpy(np.asarray(value)) for name, value in tensors.items() if name != METADATA}
    module.load_state_dict(state)
    return module


def architecture_metadata(arch: AnyArchitecture) -> str:
    return json.dumps(arch.to_dict())


def generator_from_tensors(tensors: dict[str, Any]) -> nn.Module:
    """Rebuild a generator, in eval mode, from a weights file written by ``module_to_tensors``."""
    arch = architecture_from_dict(json.loads(tensors[METADATA]["architecture"]))
    return load_state(build_generator(arch), tensors).eval()
