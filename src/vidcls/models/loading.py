"""Create and load video classifiers as ordinary transformers model directories (`models.saving` saves them).

A model is named by a preset (a key of `PRESETS`: built from a config, random weights, for
training from scratch), a local directory, or a hub id. Its head is rebuilt for the dataset's
labels. Everything about the frames it expects (`ClipSpec`) is read from the model once, here.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import torch
from transformers.utils import logging as transformers_logging
from transformers import (
    AutoImageProcessor,
    AutoModelForVideoClassification,
    AutoVideoProcessor,
    PretrainedConfig,
    PreTrainedModel,
    VideoMAEConfig,
)

from vidcls.errors import ModelError
from vidcls.models.pretrained import PRETRAINED, fine_tune_spec, pretrained_model_dir
from vidcls.models import modeling_efficientnet_lite, modeling_i3d, modeling_motion_cnn
from vidcls.models.modeling_i3d import I3DConfig
from vidcls.models.modeling_motion_cnn import MotionCNNConfig
from vidcls.data.sampling import DEFAULT_SAMPLING, check_sampling
from vidcls.models.onnx_runtime import is_onnx_export, load_onnx_classifier
from vidcls.models.saving import LoadedModel, image_processor_for, processor_normalisation
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
FRAME_BACKBONE_CODE = Path(modeling_efficientnet_lite.__file__).name  # imported by I3D's, copied beside it
MODELING_FILES = (MOTION_CNN_CODE, I3D_CODE, FRAME_BACKBONE_CODE)


def _label_maps(labels: list[str]) -> dict:
    return dict(
        num_labels=len(labels),
        id2label={i: label for i, label in enumerate(labels)},
        label2id={label: i for i, label in enumerate(labels)},
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
    mean, std = processor_normalisation(processor)
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


def spec_as_dict(spec: ClipSpec) -> dict:
    """Plain-data form of a ClipSpec for reports and JSON output."""
    return asdict(spec)
