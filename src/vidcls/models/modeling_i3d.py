"""DeepMind's Inception-I3D (RGB stream) as a transformers video classifier.

The network of Carreira and Zisserman, "Quo Vadis, Action Recognition? A New Model and the
Kinetics Dataset" (CVPR 2017), written to reproduce DeepMind's released Kinetics-400 weights
exactly (`vidcls.models.pretrained` converts them): TensorFlow's "SAME" padding, which pads more after
than before when a stride does not divide the input; max pooling that never picks the padding;
batch normalisation with the checkpoint's epsilon and no learned scale (the scale is kept at one,
so the converted statistics apply unchanged).

The last pooling adapts to the input. DeepMind averages Mixed_5c over 2 x 7 x 7 windows (stride
1) and then the logits over time, which for a 224 px input is the spatial mean followed by a
2-frame moving average over time; that is what is computed here for any frame count and size.

Optional settings (off by default, so a plain I3D folder loads and runs unchanged) make the
forward a whole-video descriptor, for a head trained on frozen features: ``sub_clips`` cuts the
frames into that many consecutive clips whose features are averaged (one forward, several clips
spread over the video); ``frame_backbone`` ("efficientnet-lite0") joins per-frame ImageNet features
(every ``frame_stride``-th frame, averaged over them) to I3D's, for scenes and objects that motion
features describe less well; ``flip_average`` averages the features of the frames and of their
mirror image; ``normalize_features`` scales each part (I3D's, the frames') to unit length, joins
them and scales the whole to unit length, the input a regularised logistic regression was fitted
on. They live in the forward, so ``transformers.pipeline`` (one clip of ``num_frames`` frames)
computes exactly what vidcls does.

This file is self-contained (torch, transformers and `modeling_efficientnet_lite`, copied beside it) because it is also copied into every
saved model directory and named in the config's ``auto_map``: ``transformers.pipeline`` loads such
a directory with ``trust_remote_code=True``, and vidcls registers the classes itself.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput

from .modeling_efficientnet_lite import FEATURE_SIZE as EFFICIENTNET_FEATURE_SIZE
from .modeling_efficientnet_lite import EfficientNetLite0

# (name, kind, settings) in DeepMind's order and with DeepMind's end-point names. A unit is
# (output channels, kernel, stride); a pool is (window, stride); a mixed block lists the widths of
# its branches: 1x1 | 1x1 -> 3x3x3 | 1x1 -> 3x3x3 | max pool -> 1x1.
ARCHITECTURE: tuple[tuple[str, str, tuple], ...] = (
    ("Conv3d_1a_7x7", "unit", (64, (7, 7, 7), (2, 2, 2))),
    ("MaxPool3d_2a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", "unit", (64, (1, 1, 1), (1, 1, 1))),
    ("Conv3d_2c_3x3", "unit", (192, (3, 3, 3), (1, 1, 1))),
    ("MaxPool3d_3a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", "mixed", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", "mixed", (128, 128, 192, 32, 96, 64)),
    ("MaxPool3d_4a_3x3", "pool", ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", "mixed", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", "mixed", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", "mixed", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", "mixed", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", "mixed", (256, 160, 320, 32, 128, 128)),
    ("MaxPool3d_5a_2x2", "pool", ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", "mixed", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", "mixed", (384, 192, 384, 48, 128, 128)),
)
FEATURE_SIZE = 1024  # channels out of Mixed_5c
# Per-frame backbones a descriptor can join: name -> (module class, feature width).
FRAME_BACKBONES = {"efficientnet-lite0": (EfficientNetLite0, EFFICIENTNET_FEATURE_SIZE)}


class I3DConfig(PretrainedConfig):
    """Frames, size, batch-norm epsilon and head dropout of an `I3DForVideoClassification`."""

    model_type = "vidcls_i3d"

    def __init__(
        self,
        num_frames: int = 64,
        image_size: int = 224,
        num_channels: int = 3,
        batch_norm_eps: float = 1e-3,
        dropout: float = 0.5,
        freeze_batch_norm: bool = True,
        sub_clips: int = 1,
        flip_average: bool = False,
        normalize_features: bool = False,
        frame_backbone: str | None = None,
        frame_stride: int = 1,
        **kwargs,
    ) -> None:
        self.num_frames = num_frames
        self.image_size = image_size
        self.num_channels = num_channels
        self.batch_norm_eps = batch_norm_eps
        self.dropout = dropout
        # Fine-tuning on a few clips a batch would replace Kinetics' statistics with noisy ones.
        self.freeze_batch_norm = freeze_batch_norm
        # The whole-video descriptor (module docstring): consecutive clips averaged, mirror image
        # averaged, unit length before the head.
        self.sub_clips = sub_clips
        self.flip_average = flip_average
        self.normalize_features = normalize_features
        if frame_backbone is not None and frame_backbone not in FRAME_BACKBONES:
            raise ValueError(f"frame_backbone must be one of {', '.join(FRAME_BACKBONES)}, got {frame_backbone!r}")
        self.frame_backbone = frame_backbone
        self.frame_stride = frame_stride
        super().__init__(**kwargs)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding of one dimension: (before, after), the odd pixel after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...], value: float) -> torch.Tensor:
    """Pad (batch, channels, T, H, W) as TensorFlow's "SAME" would before a window of ``kernel``."""
    pads: list[int] = []
    for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride))):  # F.pad takes the last dim first
        pads.extend(_same_padding(size, k, s))
    return F.pad(x, pads, value=value) if any(pads) else x


class Unit3D(nn.Module):
    """Conv3d ("SAME", no bias) -> batch norm (no learned scale in the checkpoint) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple, stride: tuple, eps: float) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv = nn.Conv3d(in_channels, out_channels, self.kernel, stride=self.stride, bias=False)
        self.bn = nn.BatchNorm3d(out_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(_pad_same(x, self.kernel, self.stride, 0.0))))


class MaxPool3dSame(nn.Module):
    """Max pooling with "SAME" padding that is never the maximum (padded with -inf)."""

    def __init__(self, kernel: tuple, stride: tuple) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride, float("-inf")), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches concatenated; unit names are DeepMind's with "/" as "_"."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], eps: float) -> None:
        super().__init__()
        one, three = (1, 1, 1), (3, 3, 3)
        self.Branch_0 = nn.ModuleDict({"Conv3d_0a_1x1": Unit3D(in_channels, widths[0], one, one, eps)})
        self.Branch_1 = nn.ModuleDict({
            "Conv3d_0a_1x1": Unit3D(in_channels, widths[1], one, one, eps),
            "Conv3d_0b_3x3": Unit3D(widths[1], widths[2], three, one, eps),
        })
        self.Branch_2 = nn.ModuleDict({
            "Conv3d_0a_1x1": Unit3D(in_channels, widths[3], one, one, eps),
            "Conv3d_0b_3x3": Unit3D(widths[3], widths[4], three, one, eps),
        })
        self.pool = MaxPool3dSame(three, one)
        self.Branch_3 = nn.ModuleDict({"Conv3d_0b_1x1": Unit3D(in_channels, widths[5], one, one, eps)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.Branch_0, self.Branch_1, self.Branch_2]
        outputs = [_run(branch.values(), x) for branch in branches]
        outputs.append(_run(self.Branch_3.values(), self.pool(x)))
        return torch.cat(outputs, dim=1)


def _run(units, x: torch.Tensor) -> torch.Tensor:
    for unit in units:
        x = unit(x)
    return x


def build_backbone(num_channels: int, eps: float) -> nn.ModuleDict:
    """Every end point up to Mixed_5c, keyed by DeepMind's names (the checkpoint's layer names)."""
    layers, channels = {}, num_channels
    for name, kind, settings in ARCHITECTURE:
        if kind == "unit":
            out_channels, kernel, stride = settings
            layers[name], channels = Unit3D(channels, out_channels, kernel, stride, eps), out_channels
        elif kind == "pool":
            layers[name] = MaxPool3dSame(*settings)
        else:
            layers[name] = InceptionModule(channels, settings, eps)
            channels = settings[0] + settings[2] + settings[4] + settings[5]
    return nn.ModuleDict(layers)


class I3DForVideoClassification(PreTrainedModel):
    """pixel_values (batch, frames, channels, height, width) in [-1, 1] -> logits.

    `pooled_features` is the 1024-wide descriptor the head reads (of the whole video with the
    config's descriptor settings); a linear probe computes it once per video.
    """

    config_class = I3DConfig
    main_input_name = "pixel_values"

    def __init__(self, config: I3DConfig) -> None:
        super().__init__(config)
        self.backbone = build_backbone(config.num_channels, config.batch_norm_eps)
        self.frame_backbone = FRAME_BACKBONES[config.frame_backbone][0]() if config.frame_backbone else None
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(sum(self.part_sizes), config.num_labels)
        self.post_init()

    @property
    def part_sizes(self) -> tuple[int, ...]:
        """Widths of the descriptor's parts: I3D's, then the frame backbone's when there is one."""
        frames = (FRAME_BACKBONES[self.config.frame_backbone][1],) if self.config.frame_backbone else ()
        return (FEATURE_SIZE, *frames)

    def add_frame_backbone(self, name: str, state_dict: dict, frame_stride: int) -> None:
        """Join a per-frame backbone's features (its weights ``state_dict``; a classifier in it is left
        out) to I3D's; the classifier is rebuilt for the wider descriptor."""
        self.config.frame_backbone, self.config.frame_stride = name, frame_stride
        self.frame_backbone = FRAME_BACKBONES[name][0]()
        self.frame_backbone.load_state_dict({k: v for k, v in state_dict.items() if not k.startswith("_fc.")})
        self.frame_backbone.eval()
        self.classifier = nn.Linear(sum(self.part_sizes), self.config.num_labels)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Conv3d, nn.Conv2d)):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, (nn.BatchNorm3d, nn.BatchNorm2d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.01)
            nn.init.zeros_(module.bias)

    def train(self, mode: bool = True) -> I3DForVideoClassification:
        """Training mode, with batch norm kept on the pretrained statistics when the config says so."""
        super().train(mode)
        if mode and self.config.freeze_batch_norm:
            for module in self.modules():
                if isinstance(module, (nn.BatchNorm3d, nn.BatchNorm2d)):
                    module.eval()
        return self

    def clip_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(batch, 1024): Mixed_5c averaged over space, then a 2-frame moving average, then over time."""
        x = pixel_values.transpose(1, 2)  # (batch, channels, frames, height, width)
        for layer in self.backbone.values():
            x = layer(x)
        x = x.mean(dim=(3, 4))
        if x.shape[2] > 1:
            x = F.avg_pool1d(x, kernel_size=2, stride=1)
        return x.mean(dim=2)

    def pooled_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(batch, sum of `part_sizes`): the descriptor the head reads, as the config's descriptor settings say."""
        views = [pixel_values, pixel_values.flip(-1)] if self.config.flip_average else [pixel_values]
        return self.descriptor(torch.stack([self.raw_features(view) for view in views]).mean(dim=0))

    def raw_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Each part's features of one view, joined, before any scaling: a linear probe computes these."""
        parts = [self.sub_clip_features(pixel_values)]
        if self.frame_backbone is not None:
            parts.append(self.frame_features(pixel_values))
        return torch.cat(parts, dim=-1)

    def descriptor(self, features: torch.Tensor) -> torch.Tensor:
        """``raw_features`` (averaged over views) as the head reads them: with ``normalize_features``
        each part at unit length, joined, then the whole at unit length."""
        if not self.config.normalize_features:
            return features
        parts = [F.normalize(part, dim=-1) for part in features.split(self.part_sizes, dim=-1)]
        return F.normalize(torch.cat(parts, dim=-1), dim=-1)

    def frame_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(batch, width): the frame backbone's features of every ``frame_stride``-th frame, averaged.
        The pixels are I3D's, in [-1, 1]; EfficientNet-Lite takes (x - 127) / 128, converted exactly."""
        frames = pixel_values[:, :: self.config.frame_stride]
        batch, count = frames.shape[:2]
        flat = EfficientNetLite0.from_symmetric_range(frames.flatten(0, 1))
        return self.frame_backbone.frame_features(flat).reshape(batch, count, -1).mean(dim=1)

    def sub_clip_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`clip_features` averaged over ``sub_clips`` consecutive clips of the frames, run as one batch."""
        batch, frames = pixel_values.shape[:2]
        clips = self.config.sub_clips
        if clips <= 1:
            return self.clip_features(pixel_values)
        if frames % clips:
            raise ValueError(f"{frames} frames do not split into {clips} sub-clips")
        per_clip = pixel_values.reshape(batch * clips, frames // clips, *pixel_values.shape[2:])
        return self.clip_features(per_clip).reshape(batch, clips, -1).mean(dim=1)

    def forward(
        self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, return_dict: bool | None = None, **kwargs
    ) -> ImageClassifierOutput:
        logits = self.classifier(self.dropout(self.pooled_features(pixel_values)))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)
