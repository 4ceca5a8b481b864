"""Generator and discriminator networks, by family (DCGAN for images, MLP for vectors).

Self-contained (torch only): a copy of this file is logged with every registered generator, which
rebuilds it from its architecture without the project installed. Named presets are in ``presets.py``.
"""

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass(frozen=True)
class Architecture:
    """Shape of a DCGAN pair.

    The generator passes the latent vector through ``mapping_layers`` fully connected layers (a
    mapping network, as in StyleGAN), projects it to ``generator_channels[0]`` maps of
    ``base_size`` x ``base_size``, then applies one transposed convolution per stride in
    ``generator_strides`` (the last one emits the image); the discriminator applies one
    strided convolution per entry of ``discriminator_channels`` and a linear logit.
    """

    image_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = 100
    # Fully connected layers (latent_dim wide, LeakyReLU) between the latent and G's projection (0: none).
    mapping_layers: int = 0
    base_size: int = 7
    generator_channels: tuple[int, ...] = (256, 128, 64)
    generator_strides: tuple[int, ...] = (1, 2, 2)
    generator_kernel: int = 5
    generator_output_bias: bool = False  # the article's last layer has none
    # G's tanh stretched by this factor and clamped to [-1, 1] (1.0: the article's plain tanh); see StretchedTanh.
    generator_output_scale: float = 1.0
    discriminator_channels: tuple[int, ...] = (64, 128)
    discriminator_kernel: int = 5
    dropout: float = 0.3
    negative_slope: float = 0.3  # Keras' LeakyReLU default, as in the article
    # G's hidden activation: leaky_relu (with negative_slope, as D's) or relu (pytorch/examples' DCGAN).
    generator_activation: str = "leaky_relu"
    # BatchNorm after each of D's convolutions but the first (pytorch/examples' DCGAN); the article has none.
    discriminator_batchnorm: bool = False
    # Initial weights: pytorch (its layers' defaults) or dcgan (N(0, 0.02) convolutions, N(1, 0.02) BatchNorm scales).
    weight_init: str = "pytorch"

    family: ClassVar[str] = "dcgan"

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.image_shape

    def __post_init__(self) -> None:
        for name in ("image_shape", "generator_channels", "generator_strides", "discriminator_channels"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def problems(self) -> list[str]:
        """What makes this architecture unbuildable, in words that name the field."""
        found = []
        _, height, width = self.image_shape
        if height != width:
            found.append(f"image_shape {self.image_shape}: only square images are supported")
        if len(self.generator_strides) != len(self.generator_channels):
            found.append(
                "generator_strides needs one stride per generator_channels entry "
                f"(got {len(self.generator_strides)} and {len(self.generator_channels)})"
            )
        produced = self.base_size * math.prod(self.generator_strides)
        if produced != height:
            found.append(
                f"the generator produces {produced}x{produced} images (base_size {self.base_size} x "
                f"strides {list(self.generator_strides)}) but the data is {height}x{width}; "
                "pick a preset made for this image size or change base_size/generator_strides"
            )
        for stride in set(self.generator_strides):
            if not 0 <= transposed_padding(self.generator_kernel, stride)[1] < stride or stride < 1:
                found.append(f"generator_kernel {self.generator_kernel} cannot upsample by stride {stride}")
        if self.mapping_layers < 0:
            found.append(f"mapping_layers must be >= 0, got {self.mapping_layers}")
        if not 0 <= self.dropout < 1:
            found.append(f"dropout must be in [0, 1), got {self.dropout}")
        if self.generator_output_scale < 1:
            found.append(f"generator_output_scale must be >= 1 (1: a plain tanh), got {self.generator_output_scale}")
        if self.generator_activation not in GENERATOR_ACTIVATIONS:
            found.append(
                f"generator_activation must be one of {sorted(GENERATOR_ACTIVATIONS)}, "
                f"got {self.generator_activation!r}"
            )
        if self.weight_init not in WEIGHT_INITS:
            found.append(f"weight_init must be one of {sorted(WEIGHT_INITS)}, got {self.weight_init!r}")
        return found

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, **asdict(self)}


@dataclass(frozen=True)
class MLPArchitecture:
    """Fully connected pair for vector data such as the 2-D mode-collapse benchmarks.

    Defaults follow PacGAN's 2-D experiments: G has four hidden layers of 400 units with
    BatchNorm and ReLU and a linear output (data is not squashed into [-1, 1]); D has three
    hidden layers of 200 units.
    """

    sample_shape: tuple[int, ...] = (2,)
    latent_dim: int = 2
    generator_hidden: tuple[int, ...] = (400, 400, 400, 400)
    discriminator_hidden: tuple[int, ...] = (200, 200, 200)
    negative_slope: float = 0.2

    family: ClassVar[str] = "mlp"

    def __post_init__(self) -> None:
        for name in ("sample_shape", "generator_hidden", "discriminator_hidden"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def problems(self) -> list[str]:
        found = []
        if len(self.sample_shape) != 1:
            found.append(f"the mlp family takes vectors (N, D); got samples of shape {self.sample_shape}")
        if not self.generator_hidden or not self.discriminator_hidden:
            found.append("generator_hidden and discriminator_hidden need at least one layer each")
        return found

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, **asdict(self)}


AnyArchitecture = Architecture | MLPArchitecture
ARCHITECTURE_FAMILIES: dict[str, type[AnyArchitecture]] = {"dcgan": Architecture, "mlp": MLPArchitecture}


def architecture_from_dict(values: dict[str, Any]) -> AnyArchitecture:
    values = dict(values)
    return ARCHITECTURE_FAMILIES[values.pop("family", "dcgan")](**values)


def transposed_padding(kernel: int, stride: int) -> tuple[int, int]:
    """Padding and output padding that make a transposed conv multiply the size by ``stride``."""
    padding = (kernel - 1) // 2
    return padding, stride - kernel + 2 * padding


class StretchedTanh(nn.Module):
    """``clamp(scale * tanh(x), -1, 1)``, with the clamp's gradient passed straight through.

    A plain tanh reaches -1 and +1 only at infinite inputs, but half of every digit is exactly -1 and
    a tenth exactly +1: G's pixels pile up one grey level inside the extremes. Stretched, the extremes
    are reached at finite inputs; the straight-through clamp keeps clamped pixels movable by D's gradient
    (a plain clamp would freeze them). In eval mode it is an ordinary clamp.
    """

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stretched = self.scale * torch.tanh(x)
        return stretched + (stretched.clamp(-1, 1) - stretched).detach()

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def output_activation(scale: float) -> nn.Module:
    return nn.Tanh() if scale == 1 else StretchedTanh(scale)


def generator_activation(arch: Architecture) -> nn.Module:
    return nn.ReLU() if arch.generator_activation == "relu" else nn.LeakyReLU(arch.negative_slope)


GENERATOR_ACTIVATIONS = {"leaky_relu", "relu"}


@torch.no_grad()
def dcgan_init(module: nn.Module) -> None:
    """Radford et al. (2016), as pytorch/examples: convolutions N(0, 0.02), BatchNorm scales N(1, 0.02), shifts 0."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(layer.weight, 0.0, 0.02)
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


WEIGHT_INITS = {"pytorch", "dcgan"}


class Generator(nn.Module):
    """Latent vector -> image in [-1, 1] (tanh, or a stretched tanh)."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        first, base = arch.generator_channels[0], arch.base_size
        self.project = nn.Sequential(
            nn.Linear(arch.latent_dim, first * base * base, bias=False),  # (N, C0*B*B)
            nn.BatchNorm1d(first * base * base),
            generator_activation(arch),
            nn.Unflatten(1, (first, base, base)),  # (N, C0, B, B)
        )
        outputs = (*arch.generator_channels[1:], arch.image_shape[0])
        layers: list[nn.Module] = []
        for index, (c_in, c_out, stride) in enumerate(
            zip(arch.generator_channels, outputs, arch.generator_strides, strict=True)
        ):
            padding, output_padding = transposed_padding(arch.generator_kernel, stride)
            last = index == len(outputs) - 1
            bias = last and arch.generator_output_bias  # BatchNorm's shift makes a bias redundant elsewhere
            layers.append(
                nn.ConvTranspose2d(c_in, c_out, arch.generator_kernel, stride, padding, output_padding, bias=bias)
            )  # (N, c_out, size * stride, size * stride)
            layers += (
                [output_activation(arch.generator_output_scale)]
                if last
                else [nn.BatchNorm2d(c_out), generator_activation(arch)]
            )
        self.upsample = nn.Sequential(*layers)
        # Built last, so that adding mapping layers leaves the other layers' initialisation as it was.
        mapping: list[nn.Module] = []
        for _ in range(arch.mapping_layers):
            mapping += [nn.Linear(arch.latent_dim, arch.latent_dim), nn.LeakyReLU(arch.negative_slope)]
        self.mapping = nn.Sequential(*mapping)  # (N, latent_dim), the identity without layers
        if arch.weight_init == "dcgan":
            dcgan_init(self)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.project(self.mapping(latent)))


class Discriminator(nn.Module):
    """One image -> one real/fake logit (no sigmoid: the loss applies it stably)."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        layers: list[nn.Module] = []
        c_in, size = arch.image_shape[0], arch.image_shape[1]
        padding = (arch.discriminator_kernel - 1) // 2
        for index, c_out in enumerate(arch.discriminator_channels):
            normalised = arch.discriminator_batchnorm and index > 0  # BatchNorm's shift replaces the bias
            layers.append(nn.Conv2d(c_in, c_out, arch.discriminator_kernel, 2, padding, bias=not normalised))
            # (N, c_out, size/2, size/2)
            layers += [nn.BatchNorm2d(c_out)] if normalised else []
            layers += [nn.LeakyReLU(arch.negative_slope), nn.Dropout(arch.dropout)]
            c_in, size = c_out, (size + 2 * padding - arch.discriminator_kernel) // 2 + 1
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.logit = nn.Linear(c_in * size * size, 1)
        if arch.weight_init == "dcgan":
            dcgan_init(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(images)).squeeze(1)


class MLPGenerator(nn.Module):
    """Latent vector -> sample vector (linear output)."""

    def __init__(self, arch: MLPArchitecture) -> None:
        super().__init__()
        self.arch = arch
        layers: list[nn.Module] = []
        width = arch.latent_dim
        for hidden in arch.generator_hidden:
            layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
            width = hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, arch.sample_shape[0]))  # (N, D)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.net(latent)


class MLPDiscriminator(nn.Module):
    """One sample vector -> one real/fake logit."""

    def __init__(self, arch: MLPArchitecture) -> None:
        super().__init__()
        self.arch = arch
        layers: list[nn.Module] = []
        width = arch.sample_shape[0]
        for hidden in arch.discriminator_hidden:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(arch.negative_slope)]
            width = hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        return self.net(samples).squeeze(1)


NETWORK_FAMILIES: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "dcgan": (Generator, Discriminator),
    "mlp": (MLPGenerator, MLPDiscriminator),
}


class Packed(nn.Module):
    """PacGAN (Lin et al. 2018): D scores ``packing`` samples at once, side by side along the channels
    (images) or the features (vectors). Packs of a collapsed G look alike where real packs differ, so D
    can tell a lack of variety that it cannot see in one sample at a time. Batches must divide by ``packing``.
    """

    def __init__(self, discriminator: nn.Module, packing: int) -> None:
        super().__init__()
        self.discriminator, self.packing = discriminator, packing

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        packs = samples.reshape(len(samples) // self.packing, -1, *samples.shape[2:])  # (N/m, m*C, H, W) or (N/m, m*D)
        return self.discriminator(packs)


def packed_architecture(arch: AnyArchitecture, packing: int) -> AnyArchitecture:
    """The architecture D is built for when it sees packs of ``packing`` samples."""
    if isinstance(arch, Architecture):
        channels, height, width = arch.image_shape
        return replace(arch, image_shape=(channels * packing, height, width))
    return replace(arch, sample_shape=(arch.sample_shape[0] * packing,))


def build_networks(arch: AnyArchitecture, packing: int = 1) -> tuple[nn.Module, nn.Module]:
    """G and D for ``arch``; with ``packing`` > 1 a D that scores packs of that many samples (``Packed``)."""
    problems = arch.problems()
    if problems:
        raise ValueError("invalid architecture: " + "; ".join(problems))
    generator_class, discriminator_class = NETWORK_FAMILIES[arch.family]
    if packing == 1:
        return generator_class(arch), discriminator_class(arch)
    return generator_class(arch), Packed(discriminator_class(packed_architecture(arch, packing)), packing)


def build_generator(arch: AnyArchitecture) -> nn.Module:
    return NETWORK_FAMILIES[arch.family][0](arch)


def with_spectral_norm(discriminator: nn.Module) -> nn.Module:
    """Miyato et al. (2018): constrain every linear and convolution layer of D to spectral norm 1.

    Works on any discriminator (convolutional or MLP) because it walks the layers rather than
    naming them; the power-iteration vectors are buffers, so they travel with the state dict.
    """
    for module in list(discriminator.modules()):
        if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
            nn.utils.parametrizations.spectral_norm(module)
    return discriminator
