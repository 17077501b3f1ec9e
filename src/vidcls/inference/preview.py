"""Show what a model sees: a GIF of one video's model input, frame by frame.

The frames go through exactly the path a prediction takes (clip sampling, short-side resize
in the decoder, centre crop, `normalize_batch`) and are turned back into pixels with
`denormalize_to_uint8`, so a wrong crop, a clip that misses the action or a bad
normalisation shows up here. Frames are scaled up (nearest neighbour, so no detail is
invented) and captioned with the source frame index and, given a model, its top prediction.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from vidcls.errors import ModelError
from vidcls.inference.forward import video_probabilities
from vidcls.models.loading import spec_as_dict
from vidcls.models.saving import LoadedModel
from vidcls.data.views import video_views
from vidcls.inference.prediction import VideoClassifier, top_k_labels
from vidcls.data.sampling import Sampling
from vidcls.data.clip_spec import ClipSpec
from vidcls.data.transforms import denormalize_to_uint8, normalize_batch

DISPLAY_SIZE = 224
CAPTION_HEIGHT = 36
FONT_SIZE = 13
# Without a model: the frames VideoMAE-base (MCG-NJU/videomae-base) takes.
DEFAULT_SPEC = ClipSpec()


def write_preview(
    video: str | Path,
    out_gif: str | Path,
    *,
    model: str | Path | LoadedModel | None = None,
    num_frames: int | None = None,
    sample_rate: int | None = None,
    size: int | None = None,
    clips: int = 1,
    sampling: Sampling | None = None,
    display_size: int = DISPLAY_SIZE,
    device: str | None = None,
) -> dict:
    """Write the GIF; returns what it shows: frame indices, clip settings and, given a model, its top
    prediction for exactly these frames (one centre clip by default, so it can differ from `predict`'s)."""
    classifier = VideoClassifier(model, device) if model is not None else None
    base = classifier.spec if classifier else DEFAULT_SPEC
    spec = preview_spec(base, num_frames, sample_rate, size, sampling, from_model=classifier is not None)
    read = video_views(video, spec, clips=clips)
    views = read.views  # (clips, T, C, H, W) uint8
    seen = denormalize_to_uint8(normalize_batch(views, spec), spec)
    top = None
    if classifier:
        probabilities = video_probabilities(classifier.loaded.model, views.unsqueeze(0), spec)[0]
        top = top_k_labels(probabilities, classifier.labels, 1)[0]
    frame_indices = np.concatenate(read.clip_indices).tolist()
    images = [
        _captioned(frame, display_size, f"frame {index}", top)
        for frame, index in zip(seen.flatten(0, 1), frame_indices)
    ]
    _save_gif(images, Path(out_gif), _frame_ms(read.clip_indices[0], read.info.fps))
    return {
        "gif": str(out_gif), "video": str(video), "num_frames": len(images), "frame_indices": frame_indices,
        "spec": spec_as_dict(spec), "prediction": top,
    }


def preview_spec(
    base: ClipSpec, num_frames: int | None, sample_rate: int | None, size: int | None, sampling: Sampling | None,
    from_model: bool,
) -> ClipSpec:
    """Explicit options over the model's (or VideoMAE-base's) settings; a model's frame count and size are fixed."""
    spec = replace(
        base,
        num_frames=num_frames or base.num_frames,
        sample_rate=sample_rate or base.sample_rate,
        crop_size=size or base.crop_size,
        resize_short_side=size or base.resize_short_side,
        sampling=sampling or base.sampling,
    )
    if from_model and (spec.num_frames, spec.crop_size) != (base.num_frames, base.crop_size):
        raise ModelError(
            f"the model takes {base.num_frames} frames of {base.crop_size} px; "
            "drop --num-frames/--size or the model"
        )
    return spec


def _captioned(frame: torch.Tensor, display_size: int, where: str, top: dict | None) -> Image.Image:
    """(C, H, W) uint8 -> a scaled-up RGB image with a caption band underneath."""
    image = Image.fromarray(frame.permute(1, 2, 0).numpy()).resize((display_size, display_size), Image.NEAREST)
    canvas = Image.new("RGB", (display_size, display_size + CAPTION_HEIGHT), "black")
    canvas.paste(image)
    text = where if top is None else f"{top['label']} {top['score']:.2f}\n{where}"
    ImageDraw.Draw(canvas).text((4, display_size + 2), text, fill="white", font=_font())
    return canvas


@cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(FONT_SIZE)


def _save_gif(images: list[Image.Image], out: Path, frame_ms: int) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(out, save_all=True, append_images=images[1:], loop=0, duration=frame_ms)


def _frame_ms(clip: np.ndarray, fps: float) -> int:
    """Show each frame for the video time between sampled frames, so motion plays at its real speed."""
    step = (clip[-1] - clip[0]) / max(len(clip) - 1, 1)
    return max(20, int(round(1000 * max(step, 1) / fps)))
