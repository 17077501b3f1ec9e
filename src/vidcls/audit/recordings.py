"""Clips of one recording across splits: the same person, place and camera at another moment.

A copy keeps the pixels; a sibling clip cut from the same recording (UCF101's clips of one
group) does not, yet it puts the test person, scene and camera in train, and a score on it
measures memory. The thumbnails cannot see it: the moment differs, and what they see best is
the background, which different recordings share (a fixed camera in front of one wall).

What tells recordings apart here is the features of a pretrained video network, Kinetics-400
I3D, computed once per video (`PretrainedFeatures`) from `FRAMES` frames spread over it: at
`MOMENT_LAYER` one vector per moment (a quarter of the video) and per quarter of the picture,
so the person and the scene where they stand are kept together, and the network's pooled
features (what its classifier reads), which the label-issue classifier reuses.

A held-out video and its nearest video of another split by the moments' features (compared
as the duplicate finder compares frames, by cosine) share a recording when the pair stands out
from both videos' neighbourhoods twice:
- in the network's features, at most `RECORDING_RATIO` of either video's distance to its
  `duplicates.NEIGHBOUR_RANK`-th nearest video (same person and action, not only same action);
- in the thumbnails, at most `SCENE_RATIO` of the same (same place, framing and colours).
What many recordings share (a court, a wall in front of a fixed camera) makes every neighbour
near and flags nothing: other people acting in front of Weizmann's walls are as close to each
other as to anyone, in both. The thresholds were chosen on UCF101 groups 8-25 and the Weizmann
actions (benchmarks/audit.md); the price of silence on Weizmann is recall (about half the
sibling clips of UCF101 are found).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from vidcls.audit.duplicates import Pair, frame_set_distance, neighbour_distances, scored_candidates
from vidcls.audit.leakage import HELD_OUT_SPLITS
from vidcls.audit.signatures import Signature, SignatureCache, compute_signatures
from vidcls.data.files import VideoInfo
from vidcls.data.sampling import segment_indices
from vidcls.models.pretrained import (
    FINE_TUNE_CROP, FINE_TUNE_FRAMES, I3D_KINETICS400, WeightsError, converted_model_dir, given_archive, pretrained_model_dir,
)

if TYPE_CHECKING:
    from vidcls.models.saving import LoadedModel


FEATURE_MODEL = I3D_KINETICS400
FRAMES = FINE_TUNE_FRAMES  # spread over the whole video, as the pipeline reads it
SHORT_SIDE = FINE_TUNE_CROP  # no crop: the whole picture; about 0.7 CPU-s a video
MOMENT_LAYER = "Mixed_4f"  # 4 moments out of 16 frames; appearance and motion, before the last pooling
MOMENT_GRID = 2  # each moment's map averaged over 2 x 2 cells: where things are, not only what
RECORDING_RATIO = 0.9
SCENE_RATIO = 0.6
FEATURES_KIND = "i3d-moments-v1"


def feature_model_dir() -> tuple[Path | None, str]:
    """The pretrained model folder where its weights are on this machine (converted, or an archive
    named by ``VIDCLS_I3D_ARCHIVE``), and otherwise None with the reason in one line. Nothing is
    downloaded: an audit does not fetch 50 MB behind the user's back."""
    try:
        folder = converted_model_dir(FEATURE_MODEL)
        if (folder / "model.safetensors").is_file() or given_archive():
            return pretrained_model_dir(FEATURE_MODEL), ""
    except WeightsError as error:
        return None, str(error)
    return None, f"no {FEATURE_MODEL} weights on this machine (`vidcls pretrained {FEATURE_MODEL}` fetches them once)"


class PretrainedFeatures:
    """Callable path, info -> `Signature` whose frames are (1, moments, features) of `MOMENT_LAYER`
    and whose label features are the network's pooled features."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.moments: list[torch.Tensor] = []
        stamp = (folder / "model.safetensors").stat().st_mtime_ns
        self.kind = f"{FEATURES_KIND}|{folder.resolve()}|{stamp}"

    @cached_property
    def loaded(self) -> LoadedModel:
        """The network, loaded on the first video the cache lacks (a warm run never loads it)."""
        from vidcls.models.loading import load_model

        loaded = load_model(str(self.folder), "cpu")
        loaded.model.eval().backbone[MOMENT_LAYER].register_forward_hook(lambda _m, _a, out: self.moments.append(out))
        return loaded

    @torch.inference_mode()
    def __call__(self, path: Path, info: VideoInfo) -> Signature:
        from vidcls.data.probe import read_video

        _, frames = read_video(path, lambda i: segment_indices(i.num_frames, FRAMES, 0.0), resize=SHORT_SIDE, info=info)
        mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (self.loaded.spec.mean, self.loaded.spec.std))
        pixels = ((torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255 - mean) / std)[None]
        self.moments.clear()
        pooled = self.loaded.model.pooled_features(pixels)[0]
        grid = torch.nn.functional.adaptive_avg_pool3d(self.moments[0], (None, MOMENT_GRID, MOMENT_GRID))[0]
        per_moment = grid.permute(1, 0, 2, 3).flatten(1)  # (moments, channels x cells)
        whole = self.moments[0][0].mean(dim=(1, 2, 3))
        label_features = torch.cat([_unit(pooled), _unit(whole)])
        return Signature(per_moment.numpy()[None], "", float("nan"), label_features.numpy())


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm().clamp_min(1e-12)


def pretrained_signatures(items: list[tuple[Path, VideoInfo]], folder: Path, cache_dir: Path) -> dict[Path, Signature]:
    """`PretrainedFeatures` of every video, cached beside the thumbnails (one thread: the network
    uses the cores)."""
    features = PretrainedFeatures(folder)
    cache = SignatureCache(cache_dir)
    try:
        found, _ = compute_signatures(items, features, features.kind, cache, workers=1)
    finally:
        cache.close()
    return found


def centred(signatures: list[Signature]) -> list[Signature]:
    """Moment features centred on their mean over the folder and scaled to unit length: features after
    a ReLU all point one way, so their raw cosines are all near 1."""
    mean = np.concatenate([s.frames[0] for s in signatures]).mean(0)
    return [Signature(_unit_rows(s.frames[0] - mean)[None], "", s.brightness, s.label_features) for s in signatures]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def shared_recordings(features: list[Signature], thumbs: list[Signature], splits: list[str]) -> list[Pair]:
    """Cross-split pairs of one recording (see the module), most evident first: ``distance`` is the
    larger of the pair's two ratios to its neighbourhoods, each over its threshold (at most 1)."""
    moments = scored_candidates(centred(features), metric="cosine") if len(features) > 1 else {}
    scenes = scored_candidates(thumbs)
    moment_reference = neighbour_distances(moments, len(features))
    scene_reference = neighbour_distances(scenes, len(thumbs))
    pairs = {}
    for a, b in _nearest_across_splits(moments, splits):
        scene = scenes.get((a, b), frame_set_distance(thumbs[a].frames, thumbs[b].frames))
        evidence = max(
            moments[a, b] / (RECORDING_RATIO * min(moment_reference[a], moment_reference[b])),
            scene / (SCENE_RATIO * min(scene_reference[a], scene_reference[b])),
        )
        if evidence <= 1.0:
            pairs[a, b] = Pair(a, b, float(evidence), False)
    return sorted(pairs.values(), key=lambda p: (p.distance, p.a, p.b))


def _nearest_across_splits(distances: dict[tuple[int, int], float], splits: list[str]) -> set[tuple[int, int]]:
    """(a, b), a < b, where one is a held-out video and the other its nearest candidate in another split."""
    nearest: dict[int, tuple[float, int]] = {}
    for (a, b), distance in distances.items():
        if splits[a] != splits[b]:
            for mine, other in ((a, b), (b, a)):
                if splits[mine] in HELD_OUT_SPLITS and distance < nearest.get(mine, (np.inf, -1))[0]:
                    nearest[mine] = (distance, other)
    return {(min(a, b), max(a, b)) for a, (_, b) in nearest.items()}
