"""Run an exported model (`vidcls export`) with onnxruntime, behind the interface the jobs use.

`inference.forward.video_probabilities`, evaluation and the server call a model as
``model(pixel_values=...).logits``, read its device from ``next(model.parameters()).device`` and
its labels from ``model.config``. `OnnxVideoClassifier` offers exactly that, so predict, eval and
serve take an exported directory through `models.loading.load_model` with no code of their own.
onnxruntime is an optional extra: it is imported only when an exported model is loaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from transformers import AutoConfig, PretrainedConfig

from vidcls.errors import ModelError

logger = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
INPUT_NAME = "pixel_values"
OUTPUT_NAME = "logits"
INSTALL_HINT = "pip install 'vidcls[onnx]'"


def is_onnx_export(name: str | Path) -> bool:
    """Whether ``name`` is a directory written by `vidcls export --format onnx`."""
    return (Path(name).expanduser() / ONNX_FILE).is_file()


def import_onnxruntime():
    """The onnxruntime module, or a `ModelError` saying how to install it (it is an optional extra)."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ModelError(f"ONNX models run with onnxruntime, which is not installed: {INSTALL_HINT}") from error
    return onnxruntime


@dataclass
class OnnxOutput:
    """What the callers read from a transformers model's output."""

    logits: torch.Tensor


class OnnxVideoClassifier:
    """An onnxruntime session that callers can use like the transformers model it was exported from.

    Inputs arrive as torch tensors on the CPU (the device `parameters` reports) and go to
    onnxruntime as numpy arrays; with a CUDA device and onnxruntime-gpu the session runs on the
    GPU and onnxruntime does the copy.
    """

    def __init__(self, session, config: PretrainedConfig) -> None:
        self.session = session
        self.config = config
        self._device_marker = torch.empty(0)  # CPU: where callers must put the inputs

    def __call__(self, pixel_values: torch.Tensor) -> OnnxOutput:
        inputs = {INPUT_NAME: np.ascontiguousarray(pixel_values.detach().to("cpu", torch.float32).numpy())}
        (logits,) = self.session.run([OUTPUT_NAME], inputs)
        return OnnxOutput(torch.from_numpy(np.asarray(logits)))

    def parameters(self) -> Iterator[torch.Tensor]:
        """One empty tensor, so ``next(model.parameters()).device`` tells callers where inputs go."""
        yield self._device_marker

    def eval(self) -> OnnxVideoClassifier:
        """Nothing to switch: an exported graph is always in inference mode."""
        return self


def load_onnx_classifier(model_dir: str | Path, device: torch.device | str = "cpu") -> OnnxVideoClassifier:
    """The exported model in ``model_dir`` with its config (labels, vidcls settings)."""
    onnxruntime = import_onnxruntime()
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidGraph, InvalidProtobuf, NoSuchFile

    model_dir = Path(model_dir).expanduser()
    try:
        config = AutoConfig.from_pretrained(model_dir)
        session = onnxruntime.InferenceSession(
            str(model_dir / ONNX_FILE), _session_options(onnxruntime), providers=_providers(onnxruntime, device)
        )
    except (OSError, ValueError, Fail, InvalidGraph, InvalidProtobuf, NoSuchFile) as error:
        raise ModelError(f"could not load the exported model in {model_dir}: {str(error).splitlines()[0]}") from error
    return OnnxVideoClassifier(session, config)


def _session_options(onnxruntime):
    """As many intra-op threads as torch uses, so one setting (`torch.set_num_threads`, the
    benchmark's ``--threads``) governs both engines and they are compared on equal cores.

    Idle intra-op threads sleep instead of spinning: `predict` decodes the next videos in other
    threads during the forward, and spinning threads took their cores (benchmarks/README.md).
    """
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _providers(onnxruntime, device: torch.device | str) -> list[str]:
    """CUDA when asked for and onnxruntime-gpu has it, else the CPU."""
    if torch.device(device).type == "cuda":
        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        logger.warning("this onnxruntime has no CUDA provider (install onnxruntime-gpu); running on the CPU")
    return ["CPUExecutionProvider"]
