"""A network of one's own, as a scientist would write it: the workflow tests name its factory
by its import path, ``networks:small_cnn`` (with tests/ on PYTHONPATH)."""

from __future__ import annotations

from torch import nn


class SmallCNN(nn.Module):
    """RGB images (3 × 24 × 32) → ``features`` (conv 5 × 5 → ReLU → max-pool 4) →
    ``classifier`` (Linear → ReLU → Linear → ``n_outputs``, 2 by default; 1 for a logit of the
    tilt task); layers are read by names such as ``features.0`` (the conv) and
    ``classifier.0``, as in torchvision's networks."""

    def __init__(self, n_channels: int = 4, hidden: int = 8, n_outputs: int = 2):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, n_channels, 5, padding=2), nn.ReLU(), nn.MaxPool2d(4))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(n_channels * 6 * 8, hidden), nn.ReLU(),
            nn.Linear(hidden, n_outputs))

    def forward(self, images):
        return self.classifier(self.features(images))


def small_cnn(n_channels: int = 4, hidden: int = 8, n_outputs: int = 2) -> SmallCNN:
    """The factory: a randomly initialised SmallCNN (the workflow seeds torch before calling)."""
    return SmallCNN(n_channels=n_channels, hidden=hidden, n_outputs=n_outputs)


#: Not a function: naming it as a factory must be refused.
NOT_A_FACTORY = 3
