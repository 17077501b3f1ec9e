"""Export a trained model to ONNX and check that onnxruntime scores clips as torch does.

The output directory holds ``model.onnx`` beside the model's ``config.json`` (labels and the
vidcls clip settings) and its processor config, so `load_model`, and through it predict, eval
and serve, take it like the model it came from. The graph takes normalised ``pixel_values``
(batch, frames, 3, crop, crop), batch size free, and returns ``logits``.

The legacy TorchScript exporter (``dynamo=False``) is used: it exports VideoMAE on torch 2.14
with no extra packages (the dynamo exporter needs onnxscript). Its tracer warnings about shape
checks are expected: frames and crop size are fixed by the model, only the batch varies.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch

from vidcls.errors import ModelError, OutputExistsError
from vidcls.inference.forward import video_probabilities
from vidcls.data.views import video_views
from vidcls.models.loading import load_model
from vidcls.models.saving import LoadedModel, save_processors, save_settings
from vidcls.models.onnx_runtime import INPUT_NAME, ONNX_FILE, OUTPUT_NAME, import_onnxruntime, is_onnx_export, load_onnx_classifier

logger = logging.getLogger(__name__)

OPSET = 17  # onnxruntime >= 1.14 runs it; the first opset with LayerNormalization as one op
EXPORTABLE_TYPES = ("videomae", "vidcls_motion_cnn")  # architectures whose export is tested against torch
RANDOM_CHECK_CLIPS = 8
EXPORT_INFO_FILE = "export.json"
TOLERANCE = 1e-4  # largest probability difference accepted between onnxruntime and torch


@dataclass
class ExportResult:
    """Where the export went and how closely onnxruntime matched torch on the check clips."""

    output: str
    source: str
    opset: int
    check_clips: int
    check_videos: list[str]  # empty: random uint8 clips were checked
    max_abs_prob_diff: float
    top1_agreement: float
    torch_ms_per_clip: float
    onnx_ms_per_clip: float

    @property
    def passed(self) -> bool:
        return self.max_abs_prob_diff <= TOLERANCE and self.top1_agreement == 1.0


def export_onnx(
    model: str | Path, output: str | Path, check_videos: Sequence[str | Path] = (), opset: int | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Export ``model`` (a trained model directory or hub id) to ``output`` and check it on clips of
    ``check_videos``, or on random clips when none are given. ``opset`` defaults to `OPSET`."""
    opset = opset or OPSET
    import_onnxruntime()  # fail before any work when the extra is missing
    output = Path(output)
    _prepare_output(output, overwrite)
    loaded = _exportable(str(model))
    _export_graph(loaded, output / ONNX_FILE, opset)
    save_settings(loaded)
    loaded.model.config.save_pretrained(output)
    save_processors(loaded, output)
    clips = _check_clips(loaded, check_videos)
    result = ExportResult(
        str(output), loaded.name, opset, len(clips), list(map(str, check_videos)), **compare(loaded, output, clips)
    )
    (output / EXPORT_INFO_FILE).write_text(json.dumps({**asdict(result), "passed": result.passed}, indent=2))
    return result


def _prepare_output(output: Path, overwrite: bool) -> None:
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise OutputExistsError(f"{output} already exists and is not empty; pass --overwrite to replace its files")
    output.mkdir(parents=True, exist_ok=True)


def _exportable(name: str) -> LoadedModel:
    """The model on the CPU, or a clear refusal for what this exporter does not handle."""
    if is_onnx_export(name):
        raise ModelError(f"{name} is already an ONNX export; export the model directory it came from")
    loaded = load_model(name, "cpu")
    model_type = loaded.model.config.model_type
    if model_type not in EXPORTABLE_TYPES:
        raise ModelError(
            f"{name} is a '{model_type}' model; vidcls exports {', '.join(EXPORTABLE_TYPES)} models to ONNX only"
        )
    return loaded


def _export_graph(loaded: LoadedModel, path: Path, opset: int) -> None:
    spec = loaded.spec
    example = torch.zeros(2, spec.num_frames, 3, *spec.input_size)
    batch_axis = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)  # see the module docstring
        warnings.simplefilter("ignore", category=DeprecationWarning)  # the legacy exporter, chosen on purpose
        try:
            torch.onnx.export(
                loaded.model, (), str(path), kwargs={INPUT_NAME: example}, input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME], dynamic_axes={INPUT_NAME: batch_axis, OUTPUT_NAME: batch_axis},
                opset_version=opset, dynamo=False,
            )
        except (RuntimeError, torch.onnx.errors.OnnxExporterError) as error:
            raise ModelError(f"could not export {loaded.name} to ONNX: {str(error).splitlines()[0]}") from error


def _check_clips(loaded: LoadedModel, videos: Sequence[str | Path]) -> torch.Tensor:
    """uint8 clips (N, T, C, H, W): the predict views of each video, or random pixels."""
    if not videos:
        spec = loaded.spec
        generator = torch.Generator().manual_seed(0)
        shape = (RANDOM_CHECK_CLIPS, spec.num_frames, 3, *spec.input_size)
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    return torch.cat([video_views(video, loaded.spec, clips=loaded.spec.clips).views for video in videos])


def compare(loaded: LoadedModel, exported: str | Path, clips: torch.Tensor) -> dict:
    """Per-clip probabilities from torch and from onnxruntime through the shared forward path:
    their largest difference, top-1 agreement and milliseconds per clip."""
    onnx_model = load_onnx_classifier(exported)
    views = clips.unsqueeze(1)  # every clip scored as its own video
    torch_probs, torch_ms = _timed_probabilities(loaded.model, views, loaded.spec)
    onnx_probs, onnx_ms = _timed_probabilities(onnx_model, views, loaded.spec)
    return dict(
        max_abs_prob_diff=float((torch_probs - onnx_probs).abs().max()),
        top1_agreement=float((torch_probs.argmax(-1) == onnx_probs.argmax(-1)).float().mean()),
        torch_ms_per_clip=torch_ms, onnx_ms_per_clip=onnx_ms,
    )


def _timed_probabilities(model, views: torch.Tensor, spec) -> tuple[torch.Tensor, float]:
    """Probabilities and ms per clip of the second of two runs (the first warms up)."""
    video_probabilities(model, views[:1], spec)
    started = time.perf_counter()
    probabilities = video_probabilities(model, views, spec)
    return probabilities, (time.perf_counter() - started) * 1000 / len(views)
