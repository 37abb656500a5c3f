"""Benchmark models written as Lernomatic models: a small CIFAR-10 CNN and a 4-stage ResNet-style net."""

from __future__ import annotations

import torch.nn as nn

from lernomatic.models import common


class CIFAR10Net(nn.Module):
    """The small CNN Lernomatic's CIFAR-10 example used: two conv layers, three linear layers."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
                                        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ResNetStyle(nn.Module):
    """Four stages of two 3x3 convolutions (64-128-256-512 channels), for 3x32x32 inputs: compute-bound."""

    def __init__(self, num_classes: int = 10, width: int = 64) -> None:
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        layers, cin = [nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)], width
        for index, cout in enumerate(widths):
            layers.append(_block(cin, cout, 1 if index == 0 else 2))
            cin = cout
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))

    def forward(self, x):
        return self.body(x)


class CIFAR10Model(common.LernomaticModel):
    def __init__(self, **kwargs) -> None:
        self.net = CIFAR10Net()
        self.import_path = 'nets'
        self.module_import_path = 'nets'
        self.model_name = 'CIFAR10Model'
        self.module_name = 'CIFAR10Net'


class ResNetStyleModel(common.LernomaticModel):
    def __init__(self, width: int = 64, **kwargs) -> None:
        self.width = width
        self.net = ResNetStyle(width=width)
        self.import_path = 'nets'
        self.module_import_path = 'nets'
        self.model_name = 'ResNetStyleModel'
        self.module_name = 'ResNetStyle'

    def get_model_args(self) -> dict:
        return {'width': self.width}
