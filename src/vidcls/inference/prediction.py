"""Classify video files with a trained model: whole-video scores, or a timeline of windows.

`VideoClassifier` loads a model once and is what the CLI, the Python API and the HTTP
server share. Inference is three stages as in transformers' pipeline: `preprocess`
(file -> uint8 views, `vidcls.data.views`), forward (`video_probabilities`), `postprocess`
(probabilities -> plain dicts). Frames are sampled as the model was trained (its saved
`ClipSpec.sampling`); with one clip and one crop a segment-sampled model sees exactly the
frames and pixels ``transformers.pipeline`` gives it.

Many files (`predict`, `VideoClassifier.predict_files`) go through the same stages as one, but
each file is opened once and decoded in threads while the model scores the files before it,
up to ``batch_size`` videos per forward, so decoding and the forward use different cores
(benchmarks/README.md has the speed against transformers' pipeline).
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Generic, Iterable, Iterator, TypeVar

import torch

from vidcls.defaults import PREDICT_BATCH_SIZE
from vidcls.errors import VideoReadError
from vidcls.inference.forward import pick_device, video_probabilities
from vidcls.models.loading import load_model
from vidcls.models.saving import LoadedModel
from vidcls.data.views import VideoViews, WindowBatch, video_views
from vidcls.data.files import VIDEO_EXTENSIONS, VideoInfo, is_video_file
from vidcls.data.decode import damage_found
from vidcls.inference.options import ViewOptions

T = TypeVar("T")


@dataclass
class VideoPrediction:
    """Top-k labels for one video, plus per-window top-k when a window was asked for, and
    ``warnings`` about the file (damage: frames that could not be decoded)."""

    path: str
    top_k: list[dict]
    duration: float
    windows: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


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

    def preprocess(self, path: str | Path, options: ViewOptions, info: VideoInfo | None = None) -> VideoViews:
        """The video's uint8 views, as the model was trained to see them (``options.sampling``
        overrides); ``info`` when the file was already probed."""
        spec, options = self.spec.sampled_as(options.sampling), options.for_model(self.spec)
        return video_views(path, spec, clips=options.clips, crops=options.crops, window=options.window, info=info)

    def postprocess(self, probabilities: torch.Tensor, options: ViewOptions) -> list[dict]:
        """Probabilities for one video -> its ``options.top_k`` [{"label", "score"}], best first."""
        return top_k_labels(probabilities, self.labels, options.top_k)

    def timeline(self, probabilities: torch.Tensor, spans: list[tuple[float, float]], options: ViewOptions) -> list[dict]:
        """Per-window top-k from per-window probabilities (windows, classes)."""
        return [
            {"start": round(start, 3), "end": round(end, 3), "top_k": self.postprocess(p, options)}
            for (start, end), p in zip(spans, probabilities)
        ]

    def score_windows(self, windows: Iterable[WindowBatch], options: ViewOptions) -> list[dict]:
        """The timeline of streamed window batches, each scored as it is decoded; only scores are kept."""
        return [entry for spans, clips in windows for entry in self.timeline(self.score(clips), spans, options)]

    def score(self, views: torch.Tensor) -> torch.Tensor:
        """Probabilities per video for uint8 views (videos, views, T, C, H, W)."""
        return video_probabilities(self.loaded.model, views, self.spec)

    def predict(self, path: str | Path, options: ViewOptions = ViewOptions()) -> VideoPrediction:
        """Classify one file; raises `VideoReadError` naming the file when it cannot be read."""
        (prediction,) = self.predict_views([(path, self.preprocess(path, options))], options)
        return prediction

    def predict_views(self, videos: list[tuple[str | Path, VideoViews]], options: ViewOptions) -> list[VideoPrediction]:
        """Forward and postprocess for videos preprocessed with ``options``: one forward for all
        their views, one for all their windows."""
        probabilities = self.score(torch.stack([views.views for _, views in videos]))
        predictions = [
            VideoPrediction(str(path), self.postprocess(p, options), views.info.duration)
            for (path, views), p in zip(videos, probabilities)
        ]
        for prediction, (_, views) in zip(predictions, videos):
            if views.windows is not None:
                prediction.windows = self.score_windows(views.windows, options)
            prediction.warnings = file_warnings(views.info)  # after the windows: their reads may find damage
        return predictions

    def predict_files(
        self,
        paths: Iterable[str | Path],
        options: ViewOptions = ViewOptions(),
        *,
        batch_size: int | None = None,
        decode_threads: int | None = None,
    ) -> Iterator[dict]:
        """Plain-dict predictions for files and folders (searched recursively), in order, as each
        batch is scored; a file that cannot be read gives {"path", "error"} and the rest go on.

        Files are decoded in ``decode_threads`` threads (default: one per core), up to two
        batches ahead, while the model scores up to ``batch_size`` videos (default
        `PREDICT_BATCH_SIZE`) per forward: the next one and those already decoded (`_ReadAhead`).
        """
        batch_size = PREDICT_BATCH_SIZE if batch_size is None else batch_size
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")

        def read(path: Path) -> VideoViews:
            if path.is_dir():  # `_video_paths` passes a folder on only when it holds no video
                raise VideoReadError(path, f"folder holds no video files (read: {' '.join(VIDEO_EXTENSIONS)})")
            return self.preprocess(path, options)

        threads = decode_threads or os.cpu_count() or 1
        with ThreadPoolExecutor(threads, thread_name_prefix="vidcls-decode") as pool:
            reads = _ReadAhead(read, _video_paths(paths), pool, ahead=2 * batch_size)
            while chunk := reads.next_batch(batch_size):
                readable = [(path, views) for path, views in chunk if not isinstance(views, VideoReadError)]
                predictions = iter(self.predict_views(readable, options) if readable else [])
                for path, views in chunk:
                    failed = isinstance(views, VideoReadError)
                    yield {"path": str(path), "error": views.reason} if failed else asdict(next(predictions))


def file_warnings(info: VideoInfo) -> list[str]:
    """What a user should know about a file that was still classified: its damage, as probed or
    as found by the reads that scored it."""
    damage = info.damage or damage_found(info.path)
    return [f"damaged: {damage}"] if damage else []


def videos_under(folder: Path) -> list[Path]:
    """Every video file under ``folder``, recursively, sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_video_file(p))


def _video_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files as given, folders replaced by the videos under them; a folder with none is passed on."""
    for path in map(Path, paths):
        videos = videos_under(path) if path.is_dir() else [path]
        yield from videos or [path]


class _ReadAhead(Generic[T]):
    """``read`` of each path in a thread pool, up to ``ahead`` paths before the consumer, handed
    out in order as (path, ``read(path)`` or the `VideoReadError` it raised); other errors propagate.

    `next_batch` waits for the next video only and adds those already read behind it: the model
    starts on the first video decoded instead of waiting for a whole batch, and batches grow to
    ``most`` when the forward is what holds things up, so decoding and the forward keep both
    stages busy from the first file to the last. At most ``ahead`` videos' views are held.
    """

    def __init__(self, read: Callable[[Path], T], paths: Iterable[Path], pool: ThreadPoolExecutor, ahead: int) -> None:
        self.read, self.paths, self.pool, self.ahead = read, iter(paths), pool, ahead
        self.pending: deque[tuple[Path, Future]] = deque()

    def next_batch(self, most: int) -> list[tuple[Path, T | VideoReadError]]:
        """The next video (waited for) and up to ``most`` - 1 more that are already read; [] at the end."""
        batch = []
        self._submit()
        while self.pending and len(batch) < most and (not batch or self.pending[0][1].done()):
            batch.append(_outcome(*self.pending.popleft()))
            self._submit()
        return batch

    def _submit(self) -> None:
        while len(self.pending) < self.ahead and (path := next(self.paths, None)) is not None:
            self.pending.append((path, self.pool.submit(self.read, path)))


def _outcome(path: Path, future: Future) -> tuple[Path, object]:
    try:
        return path, future.result()
    except VideoReadError as error:
        return path, error


def iter_predict(
    model: str | Path | LoadedModel,
    paths: Iterable[str | Path],
    options: ViewOptions = ViewOptions(),
    *,
    device: str | None = None,
    batch_size: int | None = None,
) -> Iterator[dict]:
    """`predict`, one result at a time, so a caller can show each as soon as its batch is scored."""
    return VideoClassifier(model, device).predict_files(paths, options, batch_size=batch_size)


def predict(
    model: str | Path | LoadedModel, paths: Iterable[str | Path], options: ViewOptions = ViewOptions(), **run,
) -> list[dict]:
    """Classify files and folders of videos (searched recursively); a file that fails gives {"path", "error"}.

    Each result is a plain dict: path, top_k ([{"label", "score"}]), duration (s), windows
    (per-``options.window``-seconds top-k, empty without a window) and warnings. One bad file
    never stops the rest. ``run``: device, and batch_size videos per forward (default
    `PREDICT_BATCH_SIZE`), as `iter_predict` takes them.
    """
    return list(iter_predict(model, paths, options, **run))
