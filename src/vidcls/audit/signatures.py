"""Per-video signatures: what the duplicate finder compares, computed once per file and cached.

A signature is a set of frame descriptors taken on a fixed time grid, so a copy at another
frame rate, or trimmed at either end, still holds descriptors taken near the same moments.
Each frame descriptor is the low-frequency block of the 2-D DCT of a small thumbnail, the
basis of the perceptual hash (pHash), kept as numbers rather than bits and kept for the
colour planes too: the synthetic data's distinct clips of one class differ mostly by their
colours, and a grey, binarised hash of two plain backgrounds says little. Low frequencies
survive re-encoding and resizing. A crop is a zoom, which moves every edge: each frame is
described twice, from two nested central crops (`CROP_BORDERS`), and two videos are compared
at the best-matching pair of zooms, so a copy cropped by a few percent per side still matches.
With a model, the descriptors are instead the model's pooled features of several clips
(`vidcls.audit.embeddings`).

The same thumbnails give a few global-motion figures per video (`global_motion`: pan, tilt,
zoom, rotation), the features of the label-issue classifier (`label_issues`) where no pretrained
network's features are at hand (`recordings`).

The cache is a SQLite file keyed by (kind, resolved path, size, mtime): a second run on a
grown folder decodes only the new or changed files.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from vidcls.errors import VideoReadError
from vidcls.data.files import VideoInfo

logger = logging.getLogger(__name__)

SAMPLES_PER_SECOND = 16.0  # time grid of the frame descriptors, for short videos
MAX_SAMPLES = 32  # longer videos spread this many samples over their length
MIN_SAMPLES = 4
DECODE_SHORT_SIDE = 64  # frames are decoded this small: the descriptor needs no more
THUMBNAIL = 32  # thumbnail side the DCT runs on
LUMA_BLOCK = 8  # low-frequency DCT coefficients kept: 8x8 of luma (pHash's block)
CHROMA_BLOCK = 4  # and 4x4 of each colour-difference plane
# Share of each side dropped before the thumbnail: the first keeps clear of black borders and
# edge noise, the second matches a copy cropped by about 4% per side.
CROP_BORDERS = (0.05, 0.09)
THUMBNAIL_KIND = "dct-v2"
MOTION_FEATURES = 8
CACHE_FILE = "signatures.sqlite"
DECODE_THREADS = 2  # videos decoded at once (PyAV releases the GIL; one thread each)


@dataclass(frozen=True)
class Signature:
    """What the audit knows of one video's content.

    ``frames`` (views, n, d) float32 descriptors on the time grid, one row of n per view (a
    zoom of the thumbnail, or one for embeddings); ``content`` a hash of the decoded
    sampled pixels and frame count (equal for the same decoded video in any container);
    ``brightness`` mean luma 0-255; ``label_features`` what the label-issue classifier reads of
    the video (thumbnails: the `global_motion` figures; a pretrained network: its pooled features;
    empty for embeddings)."""

    frames: np.ndarray
    content: str
    brightness: float
    label_features: np.ndarray

    @property
    def summary(self) -> np.ndarray:
        """One vector per video for the nearest-neighbour search: the mean descriptor."""
        return self.frames[0].mean(0)


def sample_indices(info: VideoInfo) -> list[int]:
    """Frame indices on the time grid: every 1/SAMPLES_PER_SECOND s, at most MAX_SAMPLES spread over the video."""
    duration = info.num_frames / info.fps
    count = int(np.clip(round(duration * SAMPLES_PER_SECOND), MIN_SAMPLES, MAX_SAMPLES))
    times = (np.arange(count) + 0.5) * duration / count
    return sorted({min(int(t * info.fps), info.num_frames - 1) for t in times})


def _dct_matrix(size: int) -> np.ndarray:
    """Orthonormal DCT-II matrix: ``m @ x`` transforms the columns of x."""
    k, n = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    m = np.cos(np.pi * (2 * n + 1) * k / (2 * size)) * np.sqrt(2 / size)
    m[0] /= np.sqrt(2)
    return m.astype(np.float32)


_DCT = _dct_matrix(THUMBNAIL)
_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.169, -0.331, 0.5], [0.5, -0.419, -0.081]], np.float32)


def thumbnails(frames: np.ndarray, border: float) -> np.ndarray:
    """(n, H, W, 3) uint8 -> (n, 3, THUMBNAIL, THUMBNAIL) float32 Y, Cb, Cr thumbnails (area means)
    of the frames without ``border`` of each side."""
    height, width = frames.shape[1:3]
    top, left = int(height * border), int(width * border)
    inner = frames[:, top : height - top, left : width - left].astype(np.float32) @ _YCBCR.T
    rows = np.linspace(0, inner.shape[1], THUMBNAIL + 1).astype(int)
    cols = np.linspace(0, inner.shape[2], THUMBNAIL + 1).astype(int)
    summed = np.add.reduceat(np.add.reduceat(inner, rows[:-1], axis=1), cols[:-1], axis=2)
    areas = np.diff(rows)[:, None] * np.diff(cols)[None, :]
    return (summed / areas[None, :, :, None]).transpose(0, 3, 1, 2)


def frame_descriptors(frames: np.ndarray, border: float = CROP_BORDERS[0]) -> np.ndarray:
    """(n, H, W, 3) uint8 frames -> (n, d) float32: the low-frequency DCT blocks of Y, Cb and Cr,
    scaled so the distance between two descriptors is a root-mean-square grey-level difference."""
    planes = thumbnails(frames, border)
    coefficients = _DCT @ planes @ _DCT.T
    blocks = [coefficients[:, 0, :LUMA_BLOCK, :LUMA_BLOCK], *(coefficients[:, c, :CHROMA_BLOCK, :CHROMA_BLOCK] for c in (1, 2))]
    return np.concatenate([b.reshape(len(frames), -1) for b in blocks], axis=1) / THUMBNAIL


def global_motion(luma: np.ndarray, step_seconds: float) -> np.ndarray:
    """(n, S, S) luma thumbnails on the time grid -> `MOTION_FEATURES` figures: the mean and the
    median over time of the flow at the textured part's centre (x, y), its divergence (zoom) and
    curl (rotation), per second.

    Each step fits one affine flow field to the brightness change between neighbouring thumbnails
    (least squares on ``dI/dt = -(u dI/dx + v dI/dy)``). It is cheap and knows nothing of classes,
    and it does not see a dark object from a light one (both signs of contrast give the same flow).
    """
    size = luma.shape[-1]
    y, x = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1
    grad_y, grad_x = np.gradient(0.5 * (luma[:-1] + luma[1:]), axis=(1, 2))
    change = luma[1:] - luma[:-1]
    steps = []
    for gx, gy, dt in zip(grad_x, grad_y, change):
        a = np.stack([gx, gx * x, gx * y, gy, gy * x, gy * y], -1).reshape(-1, 6)
        normal = a.T @ a
        p = np.linalg.solve(normal + 1e-3 * np.trace(normal) / 6 * np.eye(6) + 1e-9 * np.eye(6), a.T @ -dt.reshape(-1))
        weight = gx**2 + gy**2
        cx, cy = ((weight * x).sum(), (weight * y).sum()) / max(weight.sum(), 1e-9)
        steps.append([p[0] + p[1] * cx + p[2] * cy, p[3] + p[4] * cx + p[5] * cy, p[1] + p[5], p[4] - p[2]])
    if not steps:
        return np.zeros(MOTION_FEATURES, np.float32)
    flow = np.array(steps) / step_seconds
    return np.concatenate([flow.mean(0), np.median(flow, 0)]).astype(np.float32)


def thumbnail_signature(path: Path, info: VideoInfo) -> Signature:
    """Decode the time grid's frames of one video and describe them."""
    from vidcls.data.probe import read_video  # the decoder loads when a signature is computed

    _, frames = read_video(path, sample_indices, resize=DECODE_SHORT_SIDE, info=info)
    digest = hashlib.sha1(f"{info.num_frames}:{frames.shape}".encode())
    digest.update(frames.tobytes())
    luma = frames.astype(np.float32) @ _YCBCR[0]
    views = np.stack([frame_descriptors(frames, border) for border in CROP_BORDERS])
    step = info.num_frames / info.fps / len(frames)
    motion = global_motion(thumbnails(frames, CROP_BORDERS[0])[:, 0], step)
    return Signature(views, digest.hexdigest(), float(luma.mean()), motion)


class SignatureCache:
    """Signatures stored by (kind, path, size, mtime) in one SQLite file; None disables caching.

    Each signature is committed as it is stored (write-ahead log, so that is cheap), so several
    processes (torchrun's, or `vidcls data` beside `vidcls train`) share the file; a cache that
    cannot be written is logged and skipped, never fatal."""

    def __init__(self, folder: Path | None) -> None:
        self.db = None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(folder / CACHE_FILE), timeout=60, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("CREATE TABLE IF NOT EXISTS signatures (key TEXT PRIMARY KEY, value BLOB)")

    @staticmethod
    def key(kind: str, path: Path) -> str:
        stat = path.stat()
        return f"{kind}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"

    def get(self, key: str) -> Signature | None:
        if self.db is None:
            return None
        row = self.db.execute("SELECT value FROM signatures WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            stored = np.load(io.BytesIO(row[0]))
            return Signature(stored["frames"], str(stored["content"]), float(stored["brightness"]), stored["label_features"])
        except (OSError, ValueError, KeyError):  # a damaged entry is computed again
            return None

    def put(self, key: str, signature: Signature) -> None:
        if self.db is None:
            return
        buffer = io.BytesIO()
        np.savez(
            buffer, frames=signature.frames, content=signature.content, brightness=signature.brightness,
            label_features=signature.label_features,
        )
        try:
            self.db.execute("INSERT OR REPLACE INTO signatures VALUES (?, ?)", (key, buffer.getvalue()))
        except sqlite3.Error as error:
            logger.warning("signature cache not written (%s): going on without it", error)
            self.close()

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


CACHE_ENV = "VIDCLS_AUDIT_CACHE"


def default_cache_dir() -> Path:
    """Where signatures are cached unless told: $VIDCLS_AUDIT_CACHE, else the user's cache folder,
    never the dataset folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vidcls" / "audit"


def cached_signatures(
    items: Iterable[tuple[Path, VideoInfo]],
    describe: Callable[[Path, VideoInfo], Signature],
    kind: str,
    cache_dir: Path | None,
    workers: int = DECODE_THREADS,
) -> tuple[dict[Path, Signature], dict[Path, str]]:
    """`compute_signatures` with the cache in ``cache_dir`` (default `default_cache_dir`), open only meanwhile."""
    cache = SignatureCache(cache_dir or default_cache_dir())
    try:
        return compute_signatures(items, describe, kind, cache, workers)
    finally:
        cache.close()


def compute_signatures(
    items: Iterable[tuple[Path, VideoInfo]],
    describe: Callable[[Path, VideoInfo], Signature],
    kind: str,
    cache: SignatureCache,
    workers: int = DECODE_THREADS,
) -> tuple[dict[Path, Signature], dict[Path, str]]:
    """Signatures of every video (from the cache where the file is unchanged), and the reason for each
    video that failed: one unreadable file never stops the audit."""
    failed: dict[Path, str] = {}
    keys = {}
    for path, _ in items:
        try:
            keys[path] = cache.key(kind, path)
        except OSError as error:  # gone or unreadable since the folder was scanned
            failed[path] = f"cannot read the file ({error.strerror})"
    items = [(path, info) for path, info in items if path in keys]
    found = {path: cache.get(keys[path]) for path, _ in items}
    todo = [(path, info) for path, info in items if found[path] is None]

    def run(item: tuple[Path, VideoInfo]) -> Signature | str:
        try:
            return describe(*item)
        except VideoReadError as error:
            return error.reason

    with ThreadPoolExecutor(max_workers=workers) as pool:  # PyAV releases the GIL while decoding
        for (path, _), result in zip(todo, pool.map(run, todo)):
            if isinstance(result, str):
                logger.warning("no signature for %s: %s", path, result)
                failed[path] = result
            else:
                found[path] = result
                cache.put(keys[path], result)
    logger.info("signatures: %d from the cache, %d computed", len(items) - len(todo), len(todo) - len(failed))
    return {path: s for path, s in found.items() if s is not None}, failed
