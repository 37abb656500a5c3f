"""A small CNN for 8x8 digit images, written as a Lernomatic model (as old user code would be)."""

import torch.nn as nn

from lernomatic.models import common


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions, one pooling, two linear layers: 8x8 grey image -> 10 classes."""

    def __init__(self, num_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * width * 16, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class DigitsCNNModel(common.LernomaticModel):
    def __init__(self, **kwargs) -> None:
        self.model_args = {'num_classes': kwargs.pop('num_classes', 10), 'width': kwargs.pop('width', 32)}
        self.net = DigitsCNN(**self.model_args)
        self.import_path = 'digits_cnn'
        self.module_import_path = 'digits_cnn'
        self.model_name = 'DigitsCNNModel'
        self.module_name = 'DigitsCNN'

    def get_model_args(self) -> dict:
        return dict(self.model_args)
