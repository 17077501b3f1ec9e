"""The one place a batch of uint8 views meets the model: device, precision, normalisation.

Training's validation, `evaluate`, `predict` and the server all call `video_probabilities`,
so a video is scored the same way everywhere.

Precision: training runs bf16 mixed precision on CUDA and full precision on a CPU. Scoring
(`video_probabilities`) of a model of `BF16_MIN_PARAMETERS` or more also runs bf16 on a CPU that
computes it natively (AVX512-BF16 or AMX), with the normalised frames laid out channels-last, so
3D convolutions take oneDNN's bf16 kernels: Kinetics I3D's forward costs less than half
(benchmarks/speed.md). A video whose two best classes are nearly tied is scored again in full
precision, so bf16 never decides a near tie. A CPU with neither (AVX2 only) emulates bf16, slower
than float32, and stays in full precision. `VIDCLS_PRECISION=fp32` keeps full precision
everywhere (exact parity with float32 tools, as the tests want); ``bf16`` uses it on any CPU, to
measure what an emulating one would do.
"""

from __future__ import annotations

import contextlib
import functools
import os

import torch
from tqdm.auto import tqdm

from vidcls.data.clip_spec import ClipSpec
from vidcls.data.transforms import normalize_batch
from vidcls.errors import VidclsError

PRECISION_ENV = "VIDCLS_PRECISION"
PRECISIONS = ("auto", "fp32", "bf16")
# bf16 moved the gap between Kinetics I3D's two best classes by up to 0.03 on 36 UCF101 clips
# (benchmarks/speed.md); a video closer than this is scored again in full precision.
BF16_RECHECK_GAP = 0.05
# Autocast casts every weight to bf16 at every forward: on the small presets (under 0.6 M
# parameters, a few ms a clip) that costs what bf16 saves, and an untrained model's near ties
# would all be scored twice. Kinetics I3D has 12.7 M.
BF16_MIN_PARAMETERS = 5_000_000
# On a CPU a model that large is scored one clip per forward: its layers already keep every core
# busy at batch 1, and a batch only spills the caches. Kinetics I3D (32 x 160 x 214, bf16, 2
# cores): 0.60 s a video one at a time, 0.96 s in batches of 4; VideoMAE-base 1.43 and 1.46 s a clip.
CPU_LARGE_MODEL_CLIPS_PER_FORWARD = 1


def pick_device(device: str | None = None) -> torch.device:
    """The requested device, else CUDA when there is one, else the CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Training's precision: bf16 mixed precision on CUDA; full precision on a CPU."""
    return _bf16(device) if device.type == "cuda" else contextlib.nullcontext()


def _bf16(device: torch.device) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=torch.bfloat16)


def scores_in_bf16(model: torch.nn.Module, device: torch.device) -> bool:
    """Scoring's precision: bf16 on CUDA; on a CPU as `cpu_scores_in_bf16` says, for a model of
    at least `BF16_MIN_PARAMETERS`; a model that is not a torch module (an onnxruntime session)
    keeps its own."""
    if not isinstance(model, torch.nn.Module):
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and _is_large(model) and cpu_scores_in_bf16()


def clips_per_forward(model: torch.nn.Module, device: torch.device, default: int) -> int:
    """How many clips to give the model at once: `CPU_LARGE_MODEL_CLIPS_PER_FORWARD` for a large
    model on a CPU, else ``default``."""
    return CPU_LARGE_MODEL_CLIPS_PER_FORWARD if device.type == "cpu" and _is_large(model) else default


def _is_large(model: torch.nn.Module) -> bool:
    return sum(parameter.numel() for parameter in model.parameters()) >= BF16_MIN_PARAMETERS


def cpu_scores_in_bf16() -> bool:
    """`PRECISION_ENV` ("auto", "fp32" or "bf16"), where "auto" means when the CPU has AVX512-BF16 or AMX."""
    choice = os.environ.get(PRECISION_ENV, "auto").lower()
    if choice not in PRECISIONS:
        raise VidclsError(f"{PRECISION_ENV}={choice!r}: expected one of {', '.join(PRECISIONS)}")
    return choice == "bf16" or (choice == "auto" and cpu_has_native_bf16())


@functools.cache
def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX, which oneDNN's bf16 kernels use; AVX2-only CPUs emulate bf16, slower than float32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def model_logits(model: torch.nn.Module, clips: torch.Tensor, spec: ClipSpec, bf16: bool | None = None) -> torch.Tensor:
    """Logits for uint8 clips (N, T, C, H, W) already on the model's device, in training's
    precision (`autocast`), or with ``bf16`` as scoring chose (`scores_in_bf16`)."""
    device = clips.device
    with autocast(device) if bf16 is None else scoring_precision(device, bf16):
        pixels = scoring_pixels(clips, spec, bool(bf16))
        inputs = {getattr(model, "main_input_name", "pixel_values"): pixels}  # V-JEPA 2: pixel_values_videos
        return model(**inputs).logits.float()


def scoring_precision(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast when scoring chose it (`scores_in_bf16`), else full precision."""
    return _bf16(device) if bf16 else contextlib.nullcontext()


def scoring_pixels(clips: torch.Tensor, spec: ClipSpec, bf16: bool) -> torch.Tensor:
    """Normalised frames of uint8 clips, laid out channels-last where bf16 runs on a CPU (`channels_last`)."""
    pixels = normalize_batch(clips, spec)
    return channels_last(pixels) if bf16 and clips.device.type == "cpu" else pixels


def channels_last(pixels: torch.Tensor) -> torch.Tensor:
    """(N, T, C, H, W) with each pixel's channels side by side in memory. A video model's first
    step turns the clip into (N, C, T, H, W), which is then channels-last 3D: the layout in which
    oneDNN's bf16 convolutions run fastest, and which every later layer keeps."""
    return pixels.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)


@torch.inference_mode()
def video_probabilities(
    model: torch.nn.Module, views: torch.Tensor, spec: ClipSpec, max_clips_per_forward: int = 64
) -> torch.Tensor:
    """Class probabilities per video, softmax averaged over its views.

    ``views`` is uint8 (videos, views, T, C, H, W) on any device; views are the clips x
    crops of each video, as VideoMAE and mmaction2 test, ``max_clips_per_forward`` at a time (on a
    CPU a large model takes `CPU_LARGE_MODEL_CLIPS_PER_FORWARD`). Scored in bf16 (`scores_in_bf16`),
    a video whose two best classes are within `BF16_RECHECK_GAP` is scored again in full
    precision, so bf16 never decides a near tie.
    """
    device = next(model.parameters()).device
    bf16 = scores_in_bf16(model, device)
    max_clips_per_forward = clips_per_forward(model, device, max_clips_per_forward)
    probabilities = _mean_probabilities(model, views, spec, max_clips_per_forward, device, bf16)
    if bf16:
        close = near_ties(probabilities)
        if close.any():
            probabilities[close] = _mean_probabilities(
                model, views[close.to(views.device)], spec, max_clips_per_forward, device, False
            )
    return probabilities


def _mean_probabilities(model, views: torch.Tensor, spec: ClipSpec, max_clips: int, device, bf16: bool) -> torch.Tensor:
    videos, num_views = views.shape[:2]
    flat = views.reshape(videos * num_views, *views.shape[2:])
    probs = []
    for start in range(0, flat.shape[0], max_clips):
        chunk = flat[start : start + max_clips].to(device, non_blocking=True)
        probs.append(model_logits(model, chunk, spec, bf16).softmax(-1))
    return torch.cat(probs).view(videos, num_views, -1).mean(1).cpu()


def near_ties(probabilities: torch.Tensor) -> torch.Tensor:
    """Which videos (rows) have their two best classes within `BF16_RECHECK_GAP` of each other."""
    if probabilities.shape[-1] < 2:
        return torch.zeros(probabilities.shape[0], dtype=torch.bool)
    best, second = probabilities.topk(2, dim=-1).values.unbind(-1)
    return best - second < BF16_RECHECK_GAP


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
