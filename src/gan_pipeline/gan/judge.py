"""The judge: a small CNN classifier trained on real data, whose features score generators.

ImageNet Inception features mean little for 8x8 digits; a classifier trained on the same
domain gives both class predictions (mode coverage) and a feature space (Frechet distance).
"""

import json
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan_pipeline.gan.files import TensorFile
from gan_pipeline.gan.serialization import load_state, module_to_tensors
from gan_pipeline.gan.settings import JudgeSettings


class Judge(nn.Module):
    """Image (C, H, W) in [-1, 1] -> class logits; ``features`` is the penultimate layer."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, feature_dim: int) -> None:
        super().__init__()
        self.image_shape, self.num_classes, self.feature_dim = tuple(image_shape), num_classes, feature_dim
        channels, height, width = image_shape
        reduced = math.ceil(math.ceil(height / 2) / 2) * math.ceil(math.ceil(width / 2) / 2)
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),  # (N, 32, H, W)
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),  # (N, 64, H/2, W/2)
            nn.Conv2d(64, 128, 3, stride=2, padding=1),
            nn.BatchNorm2d(128),
            nn.ReLU(),  # (N, 128, H/4, W/4)
            nn.Flatten(),  # keeps where strokes are, which a global pool would lose
            nn.Dropout(0.3),
            nn.Linear(128 * reduced, feature_dim),
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
    """Fit the judge on real images (N, C, H, W) in [-1, 1] with integer labels."""
    rng = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    judge = Judge(tuple(images.shape[1:]), num_classes, config.feature_dim).to(images.device)
    optimiser = torch.optim.AdamW(judge.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    steps_per_epoch = max(1, len(images) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, config.learning_rate, total_steps=config.epochs * steps_per_epoch
    )
    judge.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(images), generator=rng).to(images.device)
        for index in range(steps_per_epoch):
            batch = order[index * config.batch_size : (index + 1) * config.batch_size]
            loss = F.cross_entropy(judge(_random_shift(images[batch], rng)), labels[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
    return judge.eval()


def judge_to_tensors(judge: Judge, **metadata: Any) -> TensorFile:
    """The judge's weights with its shape in the header (plus ``metadata``, e.g. what it was trained on)."""
    return module_to_tensors(
        judge,
        **metadata,
        image_shape=json.dumps(list(judge.image_shape)),
        num_classes=judge.num_classes,
        feature_dim=judge.feature_dim,
    )


def judge_from_tensors(tensors: TensorFile) -> Judge:
    meta = tensors.metadata
    judge = Judge(tuple(json.loads(meta["image_shape"])), int(meta["num_classes"]), int(meta["feature_dim"]))
    return load_state(judge, tensors).eval()
