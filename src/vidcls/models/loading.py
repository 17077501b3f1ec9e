"""Create, load and save video classifiers as ordinary transformers model directories.

A model is named by a preset (a key of `PRESETS`: built from a config, random weights, for
training from scratch), a local directory, or a hub id. Its head is rebuilt for the dataset's
labels. Everything about the frames it expects (`ClipSpec`) is read from the model once, here.

A saved model carries its frame settings twice, in the two forms readers look for: vidcls reads
``config.vidcls`` (frames, sampling, rate) and the processors; ``transformers.pipeline`` reads
the video processor (``video_preprocessor_config.json``), whose uniform frame sampling is the
test clip of vidcls's default segment sampling, so the pipeline called with no arguments sees
what the model was trained on. The image processor stays for transformers releases that have
no video processors.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForVideoClassification,
    AutoVideoProcessor,
    PretrainedConfig,
    PreTrainedModel,
    VideoMAEConfig,
    VideoMAEImageProcessor,
    VideoMAEVideoProcessor,
)
from transformers.utils import logging as transformers_logging
from transformers.video_processing_utils import BaseVideoProcessor

from vidcls.errors import ModelError
from vidcls.models.pretrained import PRETRAINED, fine_tune_spec, pretrained_model_dir
from vidcls.models import modeling_i3d, modeling_motion_cnn
from vidcls.models.modeling_i3d import I3DConfig, I3DForVideoClassification
from vidcls.models.modeling_motion_cnn import MotionCNNConfig, MotionCNNForVideoClassification
from vidcls.data.sampling import DEFAULT_SAMPLING, check_sampling
from vidcls.models.onnx_runtime import OnnxVideoClassifier, is_onnx_export, load_onnx_classifier
from vidcls.data.clip_spec import ClipSpec

logger = logging.getLogger(__name__)

# Models saved by vidcls before sampling was saved with them were trained on dense clips.
LEGACY_SAMPLING = "dense"

# Models built from a config, random weights, for training from scratch: (config class, settings).
PRESETS: dict[str, tuple[type[PretrainedConfig], dict]] = {
    # The default: learns motion from a few hundred clips on 2 CPU cores (modeling_motion_cnn).
    # 8 frames at 112 px rather than 16 at 96: a small object growing or shrinking changes size
    # by ~1 px between frames instead of ~0.3, at 0.7x the compute (benchmarks/quality.md).
    "motion": (MotionCNNConfig, dict(num_frames=8, image_size=112)),
    # A small VideoMAE; loads in transformers.pipeline without remote code, but needs easy data.
    "tiny": (VideoMAEConfig, dict(
        image_size=64, patch_size=8, num_frames=8, tubelet_size=2, hidden_size=128,
        num_hidden_layers=4, num_attention_heads=4, intermediate_size=256, use_mean_pooling=True,
    )),
    # The VideoMAE-base architecture (MCG-NJU/videomae-base), untrained.
    "base": (VideoMAEConfig, {}),
}
# The modeling code of vidcls's own architectures, copied beside their weights (named in config.json's auto_map).
MOTION_CNN_CODE = Path(modeling_motion_cnn.__file__).name
I3D_CODE = Path(modeling_i3d.__file__).name
MODELING_FILES = (MOTION_CNN_CODE, I3D_CODE)

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


def _label_maps(labels: list[str]) -> dict:
    return dict(
        num_labels=len(labels),
        id2label={i: label for i, label in enumerate(labels)},
        label2id={label: i for i, label in enumerate(labels)},
    )


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
        if np.allclose(_normalisation(candidate), (spec.mean, spec.std), atol=1e-6):  # not ViViT's built-in offset
            return candidate
    return VideoMAEVideoProcessor(**settings)


def image_processor_for(spec: ClipSpec) -> VideoMAEImageProcessor:
    """The same settings as an image processor, for transformers releases without video processors."""
    return VideoMAEImageProcessor(
        **_resize_settings(spec),
        image_mean=list(spec.mean),
        image_std=list(spec.std),
    )


def _processor_sizes(processor, config) -> tuple[int, int, tuple[int, int] | None]:
    """(crop, short side, whole-frame size) from a processor's crop_size, size and do_center_crop,
    else the config's image size; the whole-frame size (height, width) only for a processor that
    resizes to a height and width and does not crop."""
    crop_size = getattr(processor, "crop_size", None) or {}
    size = getattr(processor, "size", None) or {}
    image_size = getattr(config, "image_size", None) or getattr(config, "crop_size", None) or ClipSpec.crop_size
    crop = crop_size.get("height") or size.get("height") or image_size
    short = size.get("shortest_edge") or size.get("height") or crop
    if getattr(processor, "do_center_crop", True) is False and size.get("height") and size.get("width"):
        whole = int(size["height"]), int(size["width"])
        return min(whole), min(whole), whole  # a whole-frame spec's crop and short side: its short side
    return int(crop), int(short), None


def _normalisation(processor) -> tuple[tuple[float, ...], tuple[float, ...]]:
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


def clip_spec_from(
    model: PreTrainedModel, processor, num_frames: int | None = None, sample_rate: int | None = None,
    sampling: str | None = None,
) -> ClipSpec:
    """Resolve frame settings: explicit arguments > what was saved with the model > defaults."""
    config = model.config
    saved = getattr(config, "vidcls", None) or {}
    sampling = sampling or saved.get("sampling") or (LEGACY_SAMPLING if saved else DEFAULT_SAMPLING)
    check_sampling(sampling)
    crop, short, frame_size = _processor_sizes(processor, config)
    mean, std = _normalisation(processor)
    return ClipSpec(
        num_frames=num_frames or saved.get("num_frames") or model_frames(config) or ClipSpec.num_frames,  # VideoMAE's
        sample_rate=sample_rate or saved.get("sample_rate") or ClipSpec.sample_rate,  # the guide's
        crop_size=crop,
        resize_short_side=short,
        mean=mean,
        std=std,
        sampling=sampling,
        frame_size=frame_size,
        clips=saved.get("clips") or ClipSpec.clips,
    )


def model_frames(config) -> int | None:
    """Frames per clip the architecture takes (V-JEPA 2 calls it frames_per_clip)."""
    return getattr(config, "num_frames", None) or getattr(config, "frames_per_clip", None)


def create_model(
    name: str, labels: list[str], num_frames: int | None = None, sample_rate: int | None = None,
    sampling: str | None = None,
) -> LoadedModel:
    """A model for ``labels`` from a preset, a local directory or a hub id, head sized to the labels."""
    source = model_source(name)
    if name in PRESETS:
        config_class, settings = PRESETS[name]
        config = config_class(**settings, **_label_maps(labels))
        if num_frames:
            config.num_frames = num_frames
        model = AutoModelForVideoClassification.from_config(config)
        processor = image_processor_for(ClipSpec(crop_size=config.image_size, resize_short_side=config.image_size))
    else:
        model = _from_pretrained(source, _label_maps(labels))
        processor = load_processor(source, model)
    spec = clip_spec_from(model, processor, num_frames, sample_rate, sampling)
    if name in PRETRAINED:
        spec = fine_tune_spec(spec, num_frames)
    if isinstance(model.config, I3DConfig):  # takes any frame count and size
        model.config.num_frames, model.config.image_size = spec.num_frames, spec.crop_size
    if spec.num_frames != (model_frames(model.config) or spec.num_frames):
        raise ModelError(f"{name} takes {model_frames(model.config)} frames per clip, not {spec.num_frames}")
    return LoadedModel(model, processor, spec, name)


def load_model(name: str, device: torch.device | str = "cpu") -> LoadedModel:
    """A trained model, unchanged, for evaluation or prediction; an ONNX export runs with onnxruntime."""
    name = model_source(name)
    if is_onnx_export(name):
        model = load_onnx_classifier(name, device)
    else:
        model = _from_pretrained(name, {}).to(device)
    processor = load_processor(name, model)
    model.eval()
    return LoadedModel(model, processor, clip_spec_from(model, processor), name)


def model_source(name: str) -> str:
    """Where a model name is read from: a pretrained model's cached folder (obtained and converted on
    first use, `vidcls.models.pretrained`), else the name itself (a preset, a directory or a hub id)."""
    if name in PRETRAINED and not Path(name).is_dir():
        return str(pretrained_model_dir(name))
    return name


def _from_pretrained(name: str, overrides: dict) -> PreTrainedModel:
    """Load a local model directory or a hub id; a name that can only be a path is never sent to the hub,
    whose repo-id rules would hide the real problem (a typo in a folder name)."""
    local = Path(name).expanduser()
    if local.is_dir() and not (local / "config.json").is_file():
        raise ModelError(f"{local}: not a model directory (no config.json); pass the folder `vidcls train` wrote")
    could_be_hub_id = name.count("/") == 1 and not name.startswith((".", "/", "~")) and not name.endswith("/")
    if not local.is_dir() and not could_be_hub_id:
        presets = "" if "/" in name else f", nor a preset ({', '.join(PRESETS)}) or pretrained model ({', '.join(PRETRAINED)})"
        raise ModelError(f"{name}: no such model directory{presets}")
    try:
        with _expected_new_head(bool(overrides)):
            return AutoModelForVideoClassification.from_pretrained(
                str(local) if local.is_dir() else name, ignore_mismatched_sizes=bool(overrides), **overrides
            )
    except (OSError, ValueError) as error:
        where = "local directory" if local.is_dir() else (
            f"hub id (there is no local directory {name} either; is the hub reachable? "
            "set HF_HUB_OFFLINE=1 to use the cache)"
        )
        raise ModelError(f"could not load model '{name}' as a {where}: {str(error).splitlines()[0]}") from error


@contextlib.contextmanager
def _expected_new_head(new_head: bool) -> Iterator[None]:
    """Quiet transformers' load report and label-count warning while a head is replaced on purpose
    (new labels): the head's mismatch is the point, and the table would fill the training log."""
    if not new_head:
        yield
        return
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)


def load_processor(name: str, model: PreTrainedModel):
    """The model's video processor, else its image processor, else one built from the config."""
    for auto in (AutoVideoProcessor, AutoImageProcessor):
        try:
            return auto.from_pretrained(name)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    logger.warning("%s has no preprocessor config; using ImageNet mean/std at the model's size", name)
    size = getattr(model.config, "image_size", ClipSpec.crop_size)
    return image_processor_for(ClipSpec(crop_size=size, resize_short_side=size))


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


def spec_as_dict(spec: ClipSpec) -> dict:
    """Plain-data form of a ClipSpec for reports and JSON output."""
    return asdict(spec)
