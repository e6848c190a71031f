"""ResNet34 in plain PyTorch (BasicBlock, layers [3, 4, 6, 3]) for the flower classifier.

Parameter names follow torchvision's ``resnet34`` (``conv1``, ``bn1``, ``layer1.0.conv1`` … ``fc``), so a
torchvision ImageNet checkpoint loads into it (minus ``fc``) for fine-tuning, and no torchvision model
import is needed at serving time.
"""

from __future__ import annotations

import torch
from torch import nn

NUM_CLASSES = 5


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut; ``downsample`` matches shapes when stride or width change."""

    expansion = 1

    def __init__(self, in_channel: int, out_channel: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channel, out_channel, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channel)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channel, out_channel, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channel)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """The ResNet trunk (7x7 stem, four stages) with a ``num_classes`` linear head."""

    def __init__(self, block: type[BasicBlock], blocks_num: list[int], num_classes: int = NUM_CLASSES):
        super().__init__()
        self.in_channel = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, blocks_num[0])
        self.layer2 = self._make_layer(block, 128, blocks_num[1], stride=2)
        self.layer3 = self._make_layer(block, 256, blocks_num[2], stride=2)
        self.layer4 = self._make_layer(block, 512, blocks_num[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block: type[BasicBlock], channel: int, count: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.in_channel != channel * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.in_channel, channel * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(channel * block.expansion),
            )
        layers = [block(self.in_channel, channel, stride=stride, downsample=downsample)]
        self.in_channel = channel * block.expansion
        layers += [block(self.in_channel, channel) for _ in range(1, count)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet34(num_classes: int = NUM_CLASSES) -> ResNet:
    """ResNet34: BasicBlock, [3, 4, 6, 3]."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes)


def load_checkpoint(path: str) -> tuple[dict, dict]:
    """Return ``(state_dict, metadata)`` from a checkpoint: a bare state_dict or ``{"state_dict", "metadata"}``."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # a torch without weights_only
        obj = torch.load(path, map_location="cpu")
    if isinstance(obj, dict) and "state_dict" in obj:
        return obj["state_dict"], dict(obj.get("metadata") or {})
    return obj, {}
