"""The judge: a small CNN trained on real data, whose features score generators.

ImageNet Inception features mean little for 8x8 digits; a network trained on the same domain gives a
feature space (Frechet distance, precision/recall) and, when the data has classes, class predictions
(mode coverage). Data without labels trains it on a self-supervised task instead: which of four
rotations (0, 90, 180, 270 degrees) an image was given (Gidaris et al. 2018), a task that needs it to
see what the images show. Morozov et al. (2021) found such features rank generators as well as
Inception's do. Stacked data (Stacked MNIST: a digit per channel) trains it on single channels and their
classes; a sample's class is then its channels' classes read together, as PacGAN's protocol counts modes.
"""

import json
import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from gan_pipeline.gan.files import TensorFile
from gan_pipeline.gan.serialization import load_state, module_to_tensors
from gan_pipeline.gan.settings import JudgeSettings

JudgeTask = Literal["classes", "rotation", "channels"]
ROTATIONS = 4  # quarter turns: the rotation task's classes
MAX_FEATURE_SIDE = 8  # extra stride-2 stages keep the flattened map at most 8x8, so cost follows the pixels


def rotated(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image at 0, 90, 180 and 270 degrees ``(4N, C, H, W)``, labelled by its quarter turns ``(4N,)``."""
    turns = torch.arange(ROTATIONS, device=images.device)
    stacked = torch.stack([torch.rot90(images, int(turn), dims=(2, 3)) for turn in turns], dim=1)
    return stacked.flatten(0, 1), turns.repeat(len(images))


def channel_labels(labels: torch.Tensor, num_classes: int, channels: int) -> torch.Tensor:
    """Stacked labels ``(N,)`` -> each channel's class ``(N, channels)``: the label's base-``num_classes``
    digits, first channel first."""
    powers = num_classes ** torch.arange(channels - 1, -1, -1, device=labels.device)
    return labels[:, None] // powers % num_classes


def stacked_label(channel_classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Each channel's class ``(N, C)`` -> the stacked label ``(N,)`` (the inverse of ``channel_labels``)."""
    channels = channel_classes.shape[1]
    powers = num_classes ** torch.arange(channels - 1, -1, -1, device=channel_classes.device)
    return (channel_classes * powers).sum(dim=1)


def single_channels(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stacked images ``(N, C, H, W)`` -> one image per channel ``(N*C, 1, H, W)`` with its class ``(N*C,)``."""
    return images.flatten(0, 1).unsqueeze(1), channel_labels(labels, num_classes, images.shape[1]).flatten()


class Judge(nn.Module):
    """Image (C, H, W) in [-1, 1] -> logits of its task; ``features`` is the penultimate layer.

    ``task`` is what the logits predict: the data's classes, the quarter turns of a rotated image, or the
    class of one channel of stacked data (``image_shape`` is then one channel's).
    """

    def __init__(
        self, image_shape: tuple[int, int, int], num_classes: int, feature_dim: int, task: JudgeTask = "classes"
    ) -> None:
        super().__init__()
        self.image_shape, self.num_classes, self.feature_dim = tuple(image_shape), num_classes, feature_dim
        self.task = task
        channels, height, _ = image_shape
        stem_stride = 2 if height >= 64 else 1  # large images: the full-resolution convolution is most of the cost
        side = math.ceil(math.ceil(math.ceil(height / stem_stride) / 2) / 2)
        layers: list[nn.Module] = [
            nn.Conv2d(channels, 32, 3, stride=stem_stride, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),  # (N, 32, H, W)
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),  # (N, 64, H/2, W/2)
            nn.Conv2d(64, 128, 3, stride=2, padding=1),
            nn.BatchNorm2d(128),
            nn.ReLU(),  # (N, 128, H/4, W/4)
        ]
        while side > MAX_FEATURE_SIDE:
            layers += [nn.Conv2d(128, 128, 3, stride=2, padding=1), nn.BatchNorm2d(128), nn.ReLU()]
            side = math.ceil(side / 2)
        self.body = nn.Sequential(
            *layers,
            nn.Flatten(),  # keeps where strokes are, which a global pool would lose
            nn.Dropout(0.3),
            nn.Linear(128 * side * side, feature_dim),
            nn.ReLU(),  # (N, feature_dim)
        )
        self.classify = nn.Linear(feature_dim, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classify(self.body(images))


def _random_shift(images: torch.Tensor, rng: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Translate each batch by up to ``max_shift`` pixels: cheap augmentation against overfitting."""
    dx, dy = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=rng))
    padded = F.pad(images, (max_shift,) * 4, value=-1.0)
    h, w = images.shape[-2:]
    return padded[..., max_shift + dy : max_shift + dy + h, max_shift + dx : max_shift + dx + w]


def train_judge(images: torch.Tensor, labels: torch.Tensor, num_classes: int, config: JudgeSettings) -> Judge:
    """Fit the judge on real images (N, C, H, W) in [-1, 1]: on their integer labels, on their rotations,
    or (stacked data, ``num_classes`` per channel) on each channel's class."""
    if config.task == "channels":
        images, labels = single_channels(images, labels, num_classes)
    rng = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    classes = ROTATIONS if config.task == "rotation" else num_classes
    judge = Judge(tuple(images.shape[1:]), classes, config.feature_dim, config.task).to(images.device)
    optimiser = torch.optim.AdamW(judge.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    steps_per_epoch = max(1, len(images) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, config.learning_rate, total_steps=config.epochs * steps_per_epoch
    )
    judge.train()
    progress = tqdm(total=config.epochs * steps_per_epoch, desc="judge", unit="step", disable=not config.progress_bar)
    for _ in range(config.epochs):
        order = torch.randperm(len(images), generator=rng).to(images.device)
        for index in range(steps_per_epoch):
            batch = order[index * config.batch_size : (index + 1) * config.batch_size]
            inputs, targets = rotated(images[batch]) if config.task == "rotation" else (images[batch], labels[batch])
            loss = F.cross_entropy(judge(_random_shift(inputs, rng)), targets)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            progress.update()
    progress.close()
    return judge.eval()


def judge_to_tensors(judge: Judge, **metadata: Any) -> TensorFile:
    """The judge's weights with its shape in the header (plus ``metadata``, e.g. what it was trained on)."""
    return module_to_tensors(
        judge,
        **metadata,
        image_shape=json.dumps(list(judge.image_shape)),
        num_classes=judge.num_classes,
        feature_dim=judge.feature_dim,
        task=judge.task,
    )


def judge_from_tensors(tensors: TensorFile) -> Judge:
    meta = tensors.metadata
    shape, num_classes = tuple(json.loads(meta["image_shape"])), int(meta["num_classes"])
    judge = Judge(shape, num_classes, int(meta["feature_dim"]), meta["task"])
    return load_state(judge, tensors).eval()
