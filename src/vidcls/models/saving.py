"""A loaded video classifier and how it is saved: an ordinary transformers model directory.

`LoadedModel` is what `models.loading` returns and every job passes around; the processors
written beside the weights are built from its `ClipSpec`. Below both `models.pretrained` (which
writes converted weights as a folder) and `models.loading` (which reads folders, converting
pretrained weights on first use), so neither has to import the other back.

A saved model carries its frame settings twice, in the two forms readers look for: vidcls reads
``config.vidcls`` (frames, sampling, rate) and the processors; ``transformers.pipeline`` reads
the video processor (``video_preprocessor_config.json``), whose uniform frame sampling is the
test clip of vidcls's default segment sampling, so the pipeline called with no arguments sees
what the model was trained on. The image processor stays for transformers releases that have
no video processors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForVideoClassification, PreTrainedModel, VideoMAEImageProcessor, VideoMAEVideoProcessor
from transformers.video_processing_utils import BaseVideoProcessor

from vidcls.models.modeling_i3d import I3DConfig, I3DForVideoClassification
from vidcls.models.modeling_motion_cnn import MotionCNNConfig, MotionCNNForVideoClassification
from vidcls.models.onnx_runtime import OnnxVideoClassifier
from vidcls.data.clip_spec import ClipSpec

# vidcls loads its own architectures without remote code; saved directories also name them in
# `auto_map` (with the modeling file beside the weights) for transformers.pipeline.
for _config_class, _model_class in ((MotionCNNConfig, MotionCNNForVideoClassification), (I3DConfig, I3DForVideoClassification)):
    AutoConfig.register(_config_class.model_type, _config_class)
    AutoModelForVideoClassification.register(_config_class, _model_class)
    _config_class.register_for_auto_class()
    _model_class.register_for_auto_class("AutoModelForVideoClassification")


@dataclass
class LoadedModel:
    """A model with the processor that describes its inputs and the resolved clip settings."""

    model: PreTrainedModel | OnnxVideoClassifier  # the latter for a `vidcls export` directory
    processor: object  # a video processor, else the image processor the model came with
    spec: ClipSpec
    name: str

    @property
    def labels(self) -> list[str]:
        config = self.model.config
        return [config.id2label[i] for i in range(config.num_labels)]


def _resize_settings(spec: ClipSpec) -> dict:
    """A processor's resize and crop for ``spec``: short side then centre crop, or the whole frame
    resized to the spec's height x width, uncropped."""
    if spec.frame_size:
        height, width = spec.frame_size
        whole = {"height": height, "width": width}
        return dict(size=whole, crop_size=whole, do_center_crop=False)
    return dict(
        size={"shortest_edge": spec.resize_short_side}, crop_size={"height": spec.crop_size, "width": spec.crop_size},
        do_center_crop=True,
    )


def video_processor_for(spec: ClipSpec, like: object = None) -> BaseVideoProcessor:
    """The video processor that gives `transformers.pipeline` the pixels vidcls gives the model:
    of the class the model came with when that class can say so (its input names: V-JEPA 2's
    pixel_values_videos), else VideoMAE's."""
    settings = dict(
        **_resize_settings(spec),
        image_mean=list(spec.mean),
        image_std=list(spec.std),
        rescale_factor=1 / 255,
        num_frames=spec.num_frames,
        do_sample_frames=True,
    )
    if isinstance(like, BaseVideoProcessor):
        candidate = type(like)(**settings)
        if np.allclose(processor_normalisation(candidate), (spec.mean, spec.std), atol=1e-6):  # not ViViT's built-in offset
            return candidate
    return VideoMAEVideoProcessor(**settings)


def image_processor_for(spec: ClipSpec) -> VideoMAEImageProcessor:
    """The same settings as an image processor, for transformers releases without video processors."""
    return VideoMAEImageProcessor(
        **_resize_settings(spec),
        image_mean=list(spec.mean),
        image_std=list(spec.std),
    )


def processor_normalisation(processor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The processor's rescale, offset and normalisation as one (x / 255 - mean) / std, the form
    vidcls applies (ViViT's x / 127.5 - 1 then (. - 0.5) / 0.5 is mean 0.75, std 0.25).

    Read by running the processor on a black and a white frame, so whatever a processor class
    does to pixel values (ViViT's video processor has its offset built in) is what vidcls does.
    """
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    frames[1] = 255
    options = dict(do_resize=False, do_center_crop=False, input_data_format="channels_last", return_tensors="pt")
    if isinstance(processor, BaseVideoProcessor):
        output = processor([torch.from_numpy(frames)], do_sample_frames=False, **options)
    else:
        output = processor(list(frames), **options)
    pixels = next(iter(output.values()))[0].float()  # (frames, channels, H, W)
    black, white = pixels[0].mean(dim=(1, 2)).double(), pixels[1].mean(dim=(1, 2)).double()
    std = 1 / (white - black)
    return tuple((-black * std).tolist()), tuple(std.tolist())


def save_model(loaded: LoadedModel, out_dir: str | Path) -> None:
    """Save as a transformers model directory that `transformers.pipeline` loads unchanged and
    reads with the frames, sizes and normalisation the model was trained with."""
    save_settings(loaded)
    loaded.model.save_pretrained(out_dir, safe_serialization=True)
    save_processors(loaded, out_dir)


def save_processors(loaded: LoadedModel, out_dir: str | Path) -> None:
    """The video processor (what transformers.pipeline reads) and the image processor (for
    transformers releases without video processors), both from the model's `ClipSpec`."""
    image_processor_for(loaded.spec).save_pretrained(out_dir)
    video_processor_for(loaded.spec, like=loaded.processor).save_pretrained(out_dir)


def save_settings(loaded: LoadedModel) -> None:
    """Record the clip settings in the config (``config.vidcls``), so every reader of the directory
    (vidcls, an ONNX export of it) samples frames as training did and scores a video on the
    model's default views (``clips``)."""
    spec = loaded.spec
    loaded.model.config.vidcls = {
        "num_frames": spec.num_frames, "sample_rate": spec.sample_rate, "sampling": spec.sampling, "clips": spec.clips,
    }
