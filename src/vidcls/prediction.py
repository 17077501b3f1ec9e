"""Classify video files with a trained model: whole-video scores, or a timeline of windows.

`VideoClassifier` loads a model once and is what the CLI, the Python API and the HTTP
server share. Inference is three stages as in transformers' pipeline: `preprocess`
(file -> uint8 views), forward (`video_probabilities`), `postprocess` (probabilities -> plain
dicts). Unlike the pipeline, which reads only a video's first frames, the default looks at
clips spread over the whole video; ``sampling="pipeline"`` reads the pipeline's frames instead,
to compare with it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from vidcls.errors import VideoReadError
from vidcls.inference import pick_device, video_probabilities
from vidcls.models import LoadedModel, load_model
from vidcls.sampling import DEFAULT_CLIPS, Sampling, pipeline_clip_indices, uniform_clip_indices, window_clip_indices
from vidcls.transforms import ClipSpec, EvalTransform
from vidcls.datasets import read_views
from vidcls.video_io import VIDEO_EXTENSIONS, VideoInfo, is_video_file, probe_video



@dataclass
class VideoPrediction:
    """Top-k labels for one video, plus per-window top-k when a window was asked for."""

    path: str
    top_k: list[dict]
    duration: float
    windows: list[dict] = field(default_factory=list)


def clip_indices(info: VideoInfo, spec: ClipSpec, clips: int, sampling: Sampling = "uniform") -> list[np.ndarray]:
    """The frame indices of each clip of a video (``sampling="pipeline"`` always gives one clip)."""
    if sampling == "uniform":
        return uniform_clip_indices(info.num_frames, spec.num_frames, spec.sample_rate, clips)
    if sampling == "pipeline":
        return [pipeline_clip_indices(spec.num_frames)]
    raise ValueError(f"sampling must be 'uniform' or 'pipeline', got {sampling!r}")


def top_k_labels(probabilities: torch.Tensor, labels: list[str], top_k: int) -> list[dict]:
    """Probabilities for one video -> [{"label", "score"}], best first."""
    scores, ids = probabilities.topk(min(top_k, len(labels)))
    return [{"label": labels[i], "score": float(s)} for s, i in zip(scores.tolist(), ids.tolist())]


class VideoClassifier:
    """A loaded model and its clip settings, ready to classify files."""

    def __init__(self, model: str | Path | LoadedModel, device: str | None = None) -> None:
        self.loaded = model if isinstance(model, LoadedModel) else load_model(str(model), pick_device(device))
        self.spec = self.loaded.spec
        self.labels = self.loaded.labels

    def preprocess(
        self, path: str | Path, clips: int = DEFAULT_CLIPS, crops: int = 1, sampling: Sampling = "uniform"
    ) -> tuple[torch.Tensor, float]:
        """uint8 views (1, clips * crops, T, C, H, W) of one video, and its duration."""
        info = probe_video(path)
        views = read_views(path, clip_indices(info, self.spec, clips, sampling), EvalTransform(self.spec, crops))
        return views.flatten(0, 1).unsqueeze(0), info.duration

    def postprocess(self, probabilities: torch.Tensor, top_k: int) -> list[dict]:
        """Probabilities for one video -> [{"label", "score"}], best first."""
        return top_k_labels(probabilities, self.labels, top_k)

    def predict(
        self,
        path: str | Path,
        top_k: int = 5,
        clips: int = DEFAULT_CLIPS,
        window: float | None = None,
        sampling: Sampling = "uniform",
    ) -> VideoPrediction:
        """Classify one file; raises `VideoReadError` naming the file when it cannot be read."""
        views, duration = self.preprocess(path, clips, sampling=sampling)
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
        views = read_views(path, [indices for _, _, indices in windows], EvalTransform(self.spec))
        probabilities = video_probabilities(self.loaded.model, views, self.spec)  # views: (windows, 1, T, C, H, W)
        return [
            {"start": round(start, 3), "end": round(end, 3), "top_k": self.postprocess(p, top_k)}
            for (start, end, _), p in zip(windows, probabilities)
        ]


def videos_under(folder: Path) -> list[Path]:
    """Every video file under ``folder``, recursively, sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_video_file(p))


def iter_predict(
    model: str | Path | LoadedModel,
    paths: Iterable[str | Path],
    *,
    top_k: int = 5,
    clips: int = DEFAULT_CLIPS,
    window: float | None = None,
    sampling: Sampling = "uniform",
    device: str | None = None,
) -> Iterator[dict]:
    """`predict`, one result at a time, so a caller can show each as soon as it is ready."""
    classifier = VideoClassifier(model, device)
    for path in map(Path, paths):
        if not path.is_dir():
            yield _predict_file(classifier, path, top_k=top_k, clips=clips, window=window, sampling=sampling)
            continue
        videos = videos_under(path)
        if not videos:
            yield {"path": str(path), "error": f"folder holds no video files (read: {' '.join(VIDEO_EXTENSIONS)})"}
        for video in videos:
            yield _predict_file(classifier, video, top_k=top_k, clips=clips, window=window, sampling=sampling)


def _predict_file(classifier: VideoClassifier, path: Path, **options) -> dict:
    """One file's prediction as a plain dict, or {"path", "error"} when it cannot be read."""
    try:
        return asdict(classifier.predict(path, **options))
    except VideoReadError as error:
        return {"path": str(path), "error": error.reason}


def predict(model: str | Path | LoadedModel, paths: Iterable[str | Path], **options) -> list[dict]:
    """Classify files and folders of videos (searched recursively); a file that fails gives {"path", "error"}.

    Each result is a plain dict: path, top_k ([{"label", "score"}]), duration (s) and windows
    (per-``window``-seconds top-k, empty without ``window``). One bad file never stops the rest.
    Options as `iter_predict`: top_k, clips, window, sampling, device.
    """
    return list(iter_predict(model, paths, **options))
