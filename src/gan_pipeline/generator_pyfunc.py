"""The registered generator as an MLflow pyfunc model, logged as code ("models from code").

MLflow runs this file when the model is logged and when it is loaded; the project never imports
it. It needs torch, numpy, pandas, safetensors and mlflow, and the network module logged beside it
(``code/gan_generator_network.py``, a copy of ``gan_pipeline/gan/networks.py``); the weights are a
safetensors artifact with the architecture in its header. So loading executes no pickle and
needs no gan-pipeline install.

Input, one of:
  - one row ``{"num_samples": N, "seed": S}``: N images from standard-normal latents drawn by a
    CPU ``torch.Generator`` seeded with S (no seed: fresh randomness);
  - a ``latent`` column, one latent vector of length ``latent_dim`` per row (any float type: JSON
    numbers arrive as float64; the model computes in float32).
Output: float32 images ``(N, C, H, W)`` in [-1, 1] (vectors ``(N, D)`` for the mlp family).
``model_config={"device": "cuda"}`` at load time
picks the device (default ``auto``: CUDA when available, else CPU).
"""

import importlib
import json

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel, PythonModelContext
from safetensors import safe_open

NETWORK_MODULE = "gan_generator_network"
MAX_SAMPLES = 65_536  # per request: 64k images of 28x28 are ~200 MB of float32
CHUNK_SIZE = 1024


def _invalid(message: str) -> MlflowException:
    return MlflowException.invalid_parameter_value(
        f"{message}. Send one row {{'num_samples': N, 'seed': S}} (seed optional), "
        "or a 'latent' column with one latent vector per row."
    )


class GeneratorModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        network = importlib.import_module(NETWORK_MODULE)  # MLflow puts the model's code/ folder on sys.path
        with safe_open(context.artifacts["weights"], framework="pt") as handle:
            architecture = network.architecture_from_dict(json.loads(handle.metadata()["architecture"]))
            state = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        device = (context.model_config or {}).get("device", "auto")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.latent_dim = architecture.latent_dim
        self.generator = network.build_generator(architecture)
        self.generator.load_state_dict(state)
        self.generator.eval().to(self.device)

    def latents(self, model_input: pd.DataFrame) -> torch.Tensor:
        """The latent batch a request asks for, on the CPU."""
        latent = model_input["latent"] if "latent" in model_input else pd.Series(dtype=object)
        count = model_input["num_samples"] if "num_samples" in model_input else pd.Series(dtype=float)
        if latent.notna().any() and count.notna().any():
            raise _invalid("got both 'latent' and 'num_samples'")
        if latent.notna().any():
            if latent.isna().any():
                raise _invalid("some rows have no 'latent' vector")
            batch = np.stack([np.asarray(vector, dtype=np.float32) for vector in latent])
            if batch.ndim != 2 or batch.shape[1] != self.latent_dim:
                raise _invalid(f"each latent vector needs {self.latent_dim} values, got shape {batch.shape}")
            return torch.from_numpy(batch)
        if "latent" not in model_input and "num_samples" not in model_input:
            raise _invalid("got no 'num_samples' or 'latent' column (columns outside these three are ignored)")
        if len(model_input) != 1 or count.isna().all():
            raise _invalid(f"got {len(model_input)} rows and no 'latent' column")
        num_samples = int(count.iloc[0])
        if not 1 <= num_samples <= MAX_SAMPLES:
            raise _invalid(f"num_samples must be in [1, {MAX_SAMPLES}], got {num_samples}")
        seed = model_input["seed"].iloc[0] if "seed" in model_input else None
        rng = torch.Generator()
        if seed is None or pd.isna(seed):
            rng.seed()
        else:
            rng.manual_seed(int(seed))
        return torch.randn(num_samples, self.latent_dim, generator=rng)

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        latent = self.latents(model_input)
        with torch.no_grad():
            images = [self.generator(chunk.to(self.device)).float().cpu() for chunk in latent.split(CHUNK_SIZE)]
        return torch.cat(images).numpy()


mlflow.models.set_model(GeneratorModel())
