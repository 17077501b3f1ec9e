"""The one place a batch of uint8 views meets the model: device, precision, normalisation.

Training's validation, `evaluate`, `predict` and the server all call `video_probabilities`,
so a video is scored the same way everywhere.
"""

from __future__ import annotations

import contextlib

import torch
from tqdm.auto import tqdm

from vidcls.data.clip_spec import ClipSpec
from vidcls.data.transforms import normalize_batch


def pick_device(device: str | None = None) -> torch.device:
    """The requested device, else CUDA when there is one, else the CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 mixed precision on CUDA; full precision on the CPU (where bf16 is slower here)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def model_logits(model: torch.nn.Module, clips: torch.Tensor, spec: ClipSpec) -> torch.Tensor:
    """Logits for uint8 clips (N, T, C, H, W) already on the model's device."""
    device = clips.device
    with autocast(device):
        inputs = {getattr(model, "main_input_name", "pixel_values"): normalize_batch(clips, spec)}  # V-JEPA 2: pixel_values_videos
        return model(**inputs).logits.float()


@torch.inference_mode()
def video_probabilities(
    model: torch.nn.Module, views: torch.Tensor, spec: ClipSpec, max_clips_per_forward: int = 64
) -> torch.Tensor:
    """Class probabilities per video, softmax averaged over its views.

    ``views`` is uint8 (videos, views, T, C, H, W) on any device; views are the clips x
    crops of each video, as VideoMAE and mmaction2 test.
    """
    device = next(model.parameters()).device
    videos, num_views = views.shape[:2]
    flat = views.reshape(videos * num_views, *views.shape[2:])
    probs = []
    for start in range(0, flat.shape[0], max_clips_per_forward):
        chunk = flat[start : start + max_clips_per_forward].to(device, non_blocking=True)
        probs.append(model_logits(model, chunk, spec).softmax(-1))
    return torch.cat(probs).view(videos, num_views, -1).mean(1).cpu()


def score_loader(model: torch.nn.Module, loader, spec: ClipSpec, progress: bool = False) -> tuple[torch.Tensor, list[int], list]:
    """Score every video of a `collate_eval` loader: probabilities (videos, classes), their dataset
    positions, and the samples that failed to decode. Validation and `evaluate` share it."""
    probabilities, positions, failed = [], [], []
    for views, batch_positions, batch_failed in tqdm(loader, desc="evaluate", unit="batch", disable=None if progress else True):
        if views is not None:
            probabilities.append(video_probabilities(model, views, spec))
            positions.extend(batch_positions)
        failed.extend(batch_failed)
    num_labels = model.config.num_labels
    return (torch.cat(probabilities) if probabilities else torch.empty(0, num_labels)), positions, failed
