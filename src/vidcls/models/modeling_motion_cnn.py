"""A small 3D CNN that reads appearance and motion: vidcls's default model for training from scratch.

Why it exists: with a few hundred clips and no pretrained weights, a video transformer
(VideoMAE ``tiny``) memorises appearance and stays at chance on cluttered motion (small objects,
textured backgrounds, distractors), while this network, fed each frame and its difference to the
previous frame, learns the motion from the same clips in minutes on two CPU cores (figures in
benchmarks/quality.md). Convolutions look at every place in the frame with the same filters,
and the differences make a static background vanish, which is the prior a small dataset needs.

This file is self-contained (torch and transformers only) because it is also copied into every
saved model directory and named in the config's ``auto_map``: ``transformers.pipeline`` and
``AutoModelForVideoClassification`` load such a directory with ``trust_remote_code=True``.
vidcls registers the classes with the Auto classes itself, so it loads them without remote code.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput


# Channels-last 3D input: oneDNN's convolutions, forward and backward, run faster with channels innermost
# (benchmarks/speed.py compares torch.contiguous_format). The weights keep their layout, so saved models
# are unchanged.
INPUT_MEMORY_FORMAT = torch.channels_last_3d


class MotionCNNConfig(PretrainedConfig):
    """Frames, size and widths of a `MotionCNNForVideoClassification`."""

    model_type = "vidcls_motion_cnn"

    def __init__(
        self,
        num_frames: int = 16,
        image_size: int = 96,
        num_channels: int = 3,
        hidden_sizes: tuple[int, ...] = (24, 48, 96, 128),
        dropout: float = 0.1,
        **kwargs,
    ) -> None:
        self.num_frames = num_frames
        self.image_size = image_size
        self.num_channels = num_channels
        self.hidden_sizes = list(hidden_sizes)
        self.dropout = dropout
        super().__init__(**kwargs)


def _block(in_channels: int, out_channels: int, temporal_stride: int, kernel: tuple[int, int, int] = (3, 3, 3)) -> nn.Sequential:
    """Conv3d -> BatchNorm -> ReLU, halving height and width (and time when ``temporal_stride`` is 2)."""
    padding = tuple(k // 2 for k in kernel)
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, kernel, stride=(temporal_stride, 2, 2), padding=padding, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    )


class MotionCNNForVideoClassification(PreTrainedModel):
    """pixel_values (batch, frames, channels, height, width), normalised as VideoMAE's -> logits.

    Each frame is stacked with its difference to the previous frame (zero for the first), then
    four strided 3D convolution blocks (space halved by each, time by the last two), global
    max and average pooling, dropout and a linear head.
    """

    config_class = MotionCNNConfig
    main_input_name = "pixel_values"

    def __init__(self, config: MotionCNNConfig) -> None:
        super().__init__(config)
        widths = [2 * config.num_channels, *config.hidden_sizes]
        strides = [1] * (len(config.hidden_sizes) - 2) + [2, 2]
        # The first block is spatial only: the difference channels already carry the motion.
        kernels = [(1, 5, 5)] + [(3, 3, 3)] * (len(config.hidden_sizes) - 1)
        self.features = nn.Sequential(
            *(_block(i, o, s, k) for i, o, s, k in zip(widths, widths[1:], strides, kernels))
        )
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(2 * widths[-1], config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv3d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm3d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.01)
            nn.init.zeros_(module.bias)

    def forward(
        self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, return_dict: bool | None = None, **kwargs
    ) -> ImageClassifierOutput:
        clips = pixel_values.transpose(1, 2)  # (batch, channels, frames, height, width)
        motion = torch.cat([torch.zeros_like(clips[:, :, :1]), clips[:, :, 1:] - clips[:, :, :-1]], dim=2)
        stacked = torch.cat([clips, motion], dim=1).contiguous(memory_format=INPUT_MEMORY_FORMAT)
        features = self.features(stacked).flatten(2)
        # Max pooling finds a small moving object anywhere; the mean keeps the whole scene's say.
        features = torch.cat([features.amax(dim=2), features.mean(dim=2)], dim=1)
        logits = self.classifier(self.dropout(features))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)
