"""Classify video files with a trained model: whole-video scores, or a timeline of windows.

`VideoClassifier` loads a model once and is what the CLI, the Python API and the HTTP
server share. Inference is three stages as in transformers' pipeline: `preprocess`
(file -> uint8 views), forward (`video_probabilities`), `postprocess` (probabilities -> plain
dicts). Unlike the pipeline, which reads only a video's first frames, the default looks at
clips spread over the whole video.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vidcls.datasets import load_eval_views
from vidcls.inference import pick_device, video_probabilities
from vidcls.models import LoadedModel, load_model
from vidcls.sampling import window_clip_indices
from vidcls.transforms import EvalTransform
from vidcls.video_io import probe_video, read_frames

DEFAULT_CLIPS = 4


@dataclass
class VideoPrediction:
    """Top-k labels for one video, plus per-window top-k when a window was asked for."""

    path: str
    top_k: list[dict]
    duration: float
    windows: list[dict] = field(default_factory=list)


class VideoClassifier:
    """A loaded model and its clip settings, ready to classify files."""

    def __init__(self, model: str | Path | LoadedModel, device: str | None = None) -> None:
        self.loaded = model if isinstance(model, LoadedModel) else load_model(str(model), pick_device(device))
        self.spec = self.loaded.spec
        self.labels = self.loaded.labels

    def preprocess(self, path: str | Path, clips: int = DEFAULT_CLIPS, crops: int = 1) -> tuple[torch.Tensor, float]:
        """uint8 views (1, clips * crops, T, C, H, W) spread over the whole video, and its duration."""
        info = probe_video(path)
        views = load_eval_views(path, info.num_frames, self.spec, clips, EvalTransform(self.spec, crops))
        return views.unsqueeze(0), info.duration

    def postprocess(self, probabilities: torch.Tensor, top_k: int) -> list[dict]:
        """Probabilities for one video -> [{"label", "score"}], best first."""
        scores, ids = probabilities.topk(min(top_k, len(self.labels)))
        return [{"label": self.labels[i], "score": float(s)} for s, i in zip(scores.tolist(), ids.tolist())]

    def predict(
        self, path: str | Path, top_k: int = 5, clips: int = DEFAULT_CLIPS, window: float | None = None
    ) -> VideoPrediction:
        """Classify one file; raises `VideoReadError` naming the file when it cannot be read."""
        views, duration = self.preprocess(path, clips)
        probabilities = video_probabilities(self.loaded.model, views, self.spec)[0]
        prediction = VideoPrediction(str(path), self.postprocess(probabilities, top_k), duration)
        if window:
            prediction.windows = self.timeline(path, window, top_k)
        return prediction

    def timeline(self, path: str | Path, window: float, top_k: int = 5) -> list[dict]:
        """One centred clip per ``window`` seconds over the whole video, each with its top-k."""
        if window <= 0:
            raise ValueError(f"window must be a positive number of seconds, got {window}")
        info = probe_video(path)
        windows = window_clip_indices(info.num_frames, info.fps, window, self.spec.num_frames, self.spec.sample_rate)
        transform = EvalTransform(self.spec)
        frames = read_frames(path, np.concatenate([w[2] for w in windows]), short_side=transform.decode_short_side())
        per_window = frames.reshape(len(windows), self.spec.num_frames, *frames.shape[1:])
        views = torch.stack([transform(clip) for clip in per_window])  # (windows, 1, T, C, H, W)
        probabilities = video_probabilities(self.loaded.model, views, self.spec)
        return [
            {"start": round(start, 3), "end": round(end, 3), "top_k": self.postprocess(p, top_k)}
            for (start, end, _), p in zip(windows, probabilities)
        ]
