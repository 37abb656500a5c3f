"""A small convolutional classifier, written as the original zoo's model modules were."""

import torch.nn as nn
import torch.nn.functional as F

from lernomatic.models import common


class SmallConvNet(nn.Module):
    def __init__(self, num_classes=4, channels=8):
        super(SmallConvNet, self).__init__()
        self.conv1 = nn.Conv2d(1, channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels * 4 * 4, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        return self.fc(x.view(x.size(0), -1))


class SmallConvNetModel(common.LernomaticModel):
    def __init__(self, **kwargs):
        self.num_classes = kwargs.pop('num_classes', 4)
        self.channels = kwargs.pop('channels', 8)
        self.net = SmallConvNet(self.num_classes, self.channels)
        self.import_path = 'lernomatic.models.cifar_like'
        self.model_name = 'SmallConvNetModel'
        self.module_name = 'SmallConvNet'
        self.module_import_path = 'lernomatic.models.cifar_like'

    def __repr__(self):
        return 'SmallConvNetModel'

    def get_model_args(self):
        return {'num_classes': self.num_classes, 'channels': self.channels}
