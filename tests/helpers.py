"""Tiny models shared by the tests (importable as ``helpers``: tests/ is on sys.path via
conftest)."""
import torch
from torch import nn


class TinyCNN(nn.Module):
    """conv-bn-relu (``layer1``, ``width`` channels) -> strided conv-bn-relu (``layer2``,
    ``2*width`` channels, half resolution) -> global pool -> ``fc``."""

    def __init__(self, width=8, num_classes=5):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width),
                                    nn.ReLU())
        self.layer2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
                                    nn.BatchNorm2d(2 * width), nn.ReLU())
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.fc(self.layer2(self.layer1(x)).mean((2, 3)))


class TwoLevel(nn.Module):
    """Returns a tuple of ``levels`` maps (an FPN stand-in) and calls ``head`` once per level."""

    def __init__(self, levels=2, width=4):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.neck = Levels(levels)
        self.head = nn.Conv2d(width, 3, 1)

    def forward(self, x):
        levels = self.neck(self.stem(x))
        return [self.head(level) for level in levels]


class Levels(nn.Module):
    def __init__(self, levels):
        super().__init__()
        self.levels = levels

    def forward(self, x):
        return tuple(nn.functional.avg_pool2d(x, 2 ** i) for i in range(self.levels))


def randn(*shape, seed=0, **kwargs):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), **kwargs)
