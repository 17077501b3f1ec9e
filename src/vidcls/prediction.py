"""Classify video files with a trained model: whole-video scores, or a timeline of windows.

`VideoClassifier` loads a model once and is what the CLI, the Python API and the HTTP
server share. Inference is three stages as in transformers' pipeline: `preprocess`
(file -> uint8 views, `vidcls.preprocess`), forward (`video_probabilities`), `postprocess`
(probabilities -> plain dicts). Frames are sampled as the model was trained (its saved
`ClipSpec.sampling`); with one clip and one crop a segment-sampled model sees exactly the
frames and pixels ``transformers.pipeline`` gives it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator

import torch

from vidcls.errors import VideoReadError
from vidcls.inference import pick_device, video_probabilities
from vidcls.models import LoadedModel, load_model
from vidcls.preprocess import VideoViews, video_views
from vidcls.sampling import DEFAULT_CLIPS, Sampling
from vidcls.video_files import VIDEO_EXTENSIONS, VideoInfo, is_video_file

DEFAULT_TOP_K = 5  # labels returned per video, as transformers' pipeline


@dataclass
class VideoPrediction:
    """Top-k labels for one video, plus per-window top-k when a window was asked for."""

    path: str
    top_k: list[dict]
    duration: float
    windows: list[dict] = field(default_factory=list)


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
        self, path: str | Path, clips: int = DEFAULT_CLIPS, crops: int = 1, sampling: Sampling | None = None,
        window: float | None = None, info: VideoInfo | None = None,
    ) -> VideoViews:
        """The video's uint8 views, as the model was trained to see them (``sampling`` overrides);
        ``info`` when the file was already probed."""
        spec = replace(self.spec, sampling=sampling) if sampling else self.spec
        return video_views(path, spec, clips=clips, crops=crops, window=window, info=info)

    def postprocess(self, probabilities: torch.Tensor, top_k: int) -> list[dict]:
        """Probabilities for one video -> [{"label", "score"}], best first."""
        return top_k_labels(probabilities, self.labels, top_k)

    def timeline(self, probabilities: torch.Tensor, spans: list[tuple[float, float]], top_k: int) -> list[dict]:
        """Per-window top-k from per-window probabilities (windows, classes)."""
        return [
            {"start": round(start, 3), "end": round(end, 3), "top_k": self.postprocess(p, top_k)}
            for (start, end), p in zip(spans, probabilities)
        ]

    def score(self, views: torch.Tensor) -> torch.Tensor:
        """Probabilities per video for uint8 views (videos, views, T, C, H, W)."""
        return video_probabilities(self.loaded.model, views, self.spec)

    def predict(
        self,
        path: str | Path,
        top_k: int = DEFAULT_TOP_K,
        clips: int = DEFAULT_CLIPS,
        crops: int = 1,
        window: float | None = None,
        sampling: Sampling | None = None,
    ) -> VideoPrediction:
        """Classify one file; raises `VideoReadError` naming the file when it cannot be read."""
        views = self.preprocess(path, clips, crops, sampling, window)
        probabilities = self.score(views.views.unsqueeze(0))[0]
        prediction = VideoPrediction(str(path), self.postprocess(probabilities, top_k), views.info.duration)
        if window:
            prediction.windows = self.timeline(self.score(views.windows), views.spans, top_k)
        return prediction


def videos_under(folder: Path) -> list[Path]:
    """Every video file under ``folder``, recursively, sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_video_file(p))


def iter_predict(
    model: str | Path | LoadedModel,
    paths: Iterable[str | Path],
    *,
    device: str | None = None,
    **options,
) -> Iterator[dict]:
    """`predict`, one result at a time, so a caller can show each as soon as it is ready.
    Options as `VideoClassifier.predict`: top_k, clips, crops, window, sampling."""
    classifier = VideoClassifier(model, device)
    for path in map(Path, paths):
        if not path.is_dir():
            yield _predict_file(classifier, path, **options)
            continue
        videos = videos_under(path)
        if not videos:
            yield {"path": str(path), "error": f"folder holds no video files (read: {' '.join(VIDEO_EXTENSIONS)})"}
        for video in videos:
            yield _predict_file(classifier, video, **options)


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
    Options as `VideoClassifier.predict` (top_k, clips, crops, window, sampling), and device.
    """
    return list(iter_predict(model, paths, **options))
