"""The blocks of the FID InceptionV3: TensorFlow's ``inception-2015-12-05`` graph, as pytorch-fid
converted it, in plain torch.

Attribute names are the keys of the weight file (``pt_inception-2015-12-05-6726825d.pth``); do not
rename them. Two details differ from the textbook InceptionV3 (Szegedy et al., CVPR 2016) and from
torchvision's: the average pools of the Mixed blocks divide by the number of real pixels
(``count_include_pad=False``, TensorFlow's behaviour), and the last block (``Mixed_7c``) pools with a
max instead of an average. :class:`~otmetrics.generative.features.inception.FIDInceptionV3` assembles
them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvBN", "MixedA", "ReductionB", "MixedC", "ReductionD", "MixedE", "avg_pool_3x3", "max_pool_3x3"]


class ConvBN(nn.Module):
    """Convolution without bias, batch norm (eps = 1e-3, TensorFlow's), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def avg_pool_3x3(x):
    # TensorFlow's average pool divides by the number of real (non-padding) pixels.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def max_pool_3x3(x):
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class MixedA(nn.Module):
    """35x35 block (Mixed_5b/c/d): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = ConvBN(in_channels, 64, 1)
        self.branch5x5_1 = ConvBN(in_channels, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(in_channels, pool_features, 1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(avg_pool_3x3(x)),
        ], 1)


class ReductionB(nn.Module):
    """35x35 -> 17x17 (Mixed_6a): stride-2 3x3 | 1x1-3x3-stride-2 3x3 | stride-2 max pool."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = ConvBN(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class MixedC(nn.Module):
    """17x17 block (Mixed_6b..e) with factorised 7x7 convolutions and an average-pool branch."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c = channels_7x7
        self.branch1x1 = ConvBN(in_channels, 192, 1)
        self.branch7x7_1 = ConvBN(in_channels, c, 1)
        self.branch7x7_2 = ConvBN(c, c, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(c, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(in_channels, c, 1)
        self.branch7x7dbl_2 = ConvBN(c, c, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c, c, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c, c, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBN(in_channels, 192, 1)

    def forward(self, x):
        double = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            double,
            self.branch_pool(avg_pool_3x3(x)),
        ], 1)


class ReductionD(nn.Module):
    """17x17 -> 8x8 (Mixed_7a)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = ConvBN(in_channels, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(in_channels, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x):
        seven = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([
            self.branch3x3_2(self.branch3x3_1(x)),
            seven,
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class MixedE(nn.Module):
    """8x8 block (Mixed_7b, Mixed_7c) with split 1x3 / 3x1 branches.

    The FID graph pools with an average (padding excluded) in Mixed_7b and with a *max* in
    Mixed_7c; the textbook network averages in both. ``pool`` selects which.
    """

    def __init__(self, in_channels: int, pool: str):
        super().__init__()
        self.branch1x1 = ConvBN(in_channels, 320, 1)
        self.branch3x3_1 = ConvBN(in_channels, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(in_channels, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(in_channels, 192, 1)
        self._pool = max_pool_3x3 if pool == "max" else avg_pool_3x3

    def forward(self, x):
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(single), self.branch3x3_2b(single),
            self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double),
            self.branch_pool(self._pool(x)),
        ], 1)
