"""Create, load and save video classifiers as ordinary transformers model directories.

A model is named by a preset (``tiny``, ``base``: built from a config, random weights, for
training from scratch), a local directory, or a hub id. Its head is rebuilt for the dataset's
labels. Everything about the frames it expects (`ClipSpec`) is read from the model once, here.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import (
    AutoImageProcessor,
    AutoModelForVideoClassification,
    PreTrainedModel,
    VideoMAEConfig,
    VideoMAEForVideoClassification,
)
from transformers.utils import is_torchvision_available

if is_torchvision_available():
    from transformers import VideoMAEImageProcessor
else:  # the same processor without torchvision; importing the plain name would warn on every run
    from transformers import VideoMAEImageProcessorPil as VideoMAEImageProcessor

from vidcls.errors import ModelError
from vidcls.transforms import IMAGENET_MEAN, IMAGENET_STD, ClipSpec

logger = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATE = 4  # the guide's rate; saved with every model so inference matches training

PRESETS: dict[str, dict] = {
    # Small enough to learn the embedded motion dataset on 2 CPU cores in minutes.
    "tiny": dict(
        image_size=64, patch_size=8, num_frames=8, tubelet_size=2, hidden_size=128,
        num_hidden_layers=4, num_attention_heads=4, intermediate_size=256, use_mean_pooling=True,
    ),
    # The VideoMAE-base architecture (MCG-NJU/videomae-base), untrained.
    "base": dict(),
}


@dataclass
class LoadedModel:
    """A model with the processor that describes its inputs and the resolved clip settings."""

    model: PreTrainedModel
    processor: VideoMAEImageProcessor
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


def _processor_for(image_size: int) -> VideoMAEImageProcessor:
    return VideoMAEImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
    )


def clip_spec_from(model: PreTrainedModel, processor, num_frames: int | None = None, sample_rate: int | None = None) -> ClipSpec:
    """Resolve frame settings: explicit arguments > what was saved with the model > defaults."""
    config = model.config
    saved = getattr(config, "vidcls", None) or {}
    crop = processor.crop_size.get("height") if getattr(processor, "crop_size", None) else config.image_size
    size = getattr(processor, "size", None) or {}
    short = size.get("shortest_edge") or size.get("height") or crop
    return ClipSpec(
        num_frames=num_frames or saved.get("num_frames") or getattr(config, "num_frames", 16),
        sample_rate=sample_rate or saved.get("sample_rate") or DEFAULT_SAMPLE_RATE,
        crop_size=int(crop),
        resize_short_side=int(short),
        mean=tuple(processor.image_mean),
        std=tuple(processor.image_std),
    )


def create_model(name: str, labels: list[str], num_frames: int | None = None, sample_rate: int | None = None) -> LoadedModel:
    """A model for ``labels`` from a preset, a local directory or a hub id, head sized to the labels."""
    if name in PRESETS:
        config = VideoMAEConfig(**PRESETS[name], **_label_maps(labels))
        if num_frames:
            config.num_frames = num_frames
        model = VideoMAEForVideoClassification(config)
        processor = _processor_for(config.image_size)
    else:
        model = _from_pretrained(name, _label_maps(labels))
        processor = load_processor(name, model)
    spec = clip_spec_from(model, processor, num_frames, sample_rate)
    if spec.num_frames != getattr(model.config, "num_frames", spec.num_frames):
        raise ModelError(f"{name} takes {model.config.num_frames} frames per clip, not {spec.num_frames}")
    return LoadedModel(model, processor, spec, name)


def load_model(name: str, device: torch.device | str = "cpu") -> LoadedModel:
    """A trained model, unchanged, for evaluation or prediction."""
    model = _from_pretrained(name, {})
    processor = load_processor(name, model)
    model.to(device).eval()
    return LoadedModel(model, processor, clip_spec_from(model, processor), name)


def _from_pretrained(name: str, overrides: dict) -> PreTrainedModel:
    """Load a local model directory or a hub id; a name that can only be a path is never sent to the hub,
    whose repo-id rules would hide the real problem (a typo in a folder name)."""
    local = Path(name).expanduser()
    if local.is_dir() and not (local / "config.json").is_file():
        raise ModelError(f"{local}: not a model directory (no config.json); pass the folder `vidcls train` wrote")
    could_be_hub_id = name.count("/") == 1 and not name.startswith((".", "/", "~")) and not name.endswith("/")
    if not local.is_dir() and not could_be_hub_id:
        presets = "" if "/" in name else f", nor a preset ({', '.join(PRESETS)})"
        raise ModelError(f"{name}: no such model directory{presets}")
    try:
        return AutoModelForVideoClassification.from_pretrained(
            str(local) if local.is_dir() else name, ignore_mismatched_sizes=bool(overrides), **overrides
        )
    except (OSError, ValueError) as error:
        where = "local directory" if local.is_dir() else (
            f"hub id (there is no local directory {name} either; is the hub reachable? "
            "set HF_HUB_OFFLINE=1 to use the cache)"
        )
        raise ModelError(f"could not load model '{name}' as a {where}: {str(error).splitlines()[0]}") from error


def load_processor(name: str, model: PreTrainedModel) -> VideoMAEImageProcessor:
    """The saved image processor, or one built from the config when the directory has none."""
    try:
        return AutoImageProcessor.from_pretrained(name)
    except (OSError, ValueError):
        logger.warning("%s has no preprocessor config; using ImageNet mean/std at the model's size", name)
        return _processor_for(getattr(model.config, "image_size", 224))


def save_model(loaded: LoadedModel, out_dir: str | Path) -> None:
    """Save as a transformers model directory that `transformers.pipeline` loads unchanged."""
    out_dir = Path(out_dir)
    loaded.model.config.vidcls = {"num_frames": loaded.spec.num_frames, "sample_rate": loaded.spec.sample_rate}
    loaded.model.save_pretrained(out_dir, safe_serialization=True)
    loaded.processor.save_pretrained(out_dir)


def spec_as_dict(spec: ClipSpec) -> dict:
    """Plain-data form of a ClipSpec for reports and JSON output."""
    return asdict(spec)
