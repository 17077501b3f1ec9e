"""Clips of one recording across splits: the same person, place and camera at another moment.

A copy keeps the pixels; a sibling clip cut from the same recording (UCF101's clips of one
group) does not, yet it puts the test person, scene and camera in train, and a score on it
measures memory. The thumbnails alone cannot see it: the moment differs, and what they see best
is the background, which different recordings share (a fixed camera in front of one wall).

What tells recordings apart here is what an ImageNet network sees in the frames: EfficientNet-Lite0's
features (`FEATURE_MODEL`, `RecordingFeatures`) of `FRAMES` frames spread over each video, each
frame's last feature map averaged over space, then over the frames; once of the frames and once of
the frames mirrored, so a mirrored clip is as near as a plain one. They see the person, their
clothes, the place and the light together. They are compared by cosine after centring on the
folder's mean (features after a ReLU all point one way, so their raw cosines are all near 1).

A held-out video and a video of another split share a recording when the pair stands out from
both videos' neighbourhoods twice:
- in those features, at most `RECORDING_RATIO` of either video's distance to its
  `duplicates.NEIGHBOUR_RANK`-th nearest video (the same person and place, not only the action);
- in the thumbnails, at most `SCENE_RATIO` of the same: a loose check (a sibling is often framed
  otherwise) that drops pairs whose pictures differ more than their neighbours' do.
What many recordings share (a court, a wall in front of a fixed camera) makes every neighbour
near and flags nothing: other people acting in front of Weizmann's walls are as close to each
other as to anyone. Kinetics-400 I3D's features, tried first, see the action and the scene
rather than who acts: at the same silence on Weizmann they found fewer siblings (benchmarks/audit.md).
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from vidcls.audit.duplicates import Pair, frame_set_distance, neighbour_distances, scored_candidates
from vidcls.audit.leakage import HELD_OUT_SPLITS
from vidcls.audit.signatures import Signature, cached_signatures
from vidcls.data.files import VideoInfo
from vidcls.data.sampling import segment_indices
from vidcls.models.modeling_efficientnet_lite import EfficientNetLite0
from vidcls.models.pretrained import (
    EFFICIENTNET_LITE0, EFFICIENTNET_LITE0_SOURCE, WeightsError, efficientnet_lite0_state_dict, local_archive,
)

FEATURE_MODEL = EFFICIENTNET_LITE0
FRAMES = 16  # spread over the whole video (segment sampling, as the pipeline reads it)
SHORT_SIDE = 160  # no crop: the whole picture
# Frames run through the network at once: at 16, a third of the CPU time went to the kernel
# allocating and freeing the large activations (0.78 s a UCF101 video, 0.31 s of it system time;
# at 4: 0.44 s, none).
BATCH_FRAMES = 4
# A pair shares a recording where its feature distance is at most RECORDING_RATIO, and its
# thumbnail distance at most SCENE_RATIO, of either video's distance to its NEIGHBOUR_RANK-th
# nearest. Chosen on 360 UCF101 clips (groups 8-25; 5 splits by clip, 5 by group) and the three
# Weizmann actor folds (benchmarks/audit.md): 0.45 and 1.2 flag 0.57 of the test clips with a
# sibling in train (I3D's moments with the thumbnails, the rule before: 0.43-0.48), every pair
# right, no group-split test video and no Weizmann video. The closest pair of two Weizmann actors
# (ido and lyova, jumping jacks) sits at 0.52: from 0.525 on, 3 Weizmann videos are flagged; 0.6
# with 1.0 flags none and finds 0.65, but with 3% to spare on two pairs.
RECORDING_RATIO = 0.45
SCENE_RATIO = 1.2
FEATURES_KIND = "effnet-lite0-mirrored-v2"  # the weights are fixed by their sha256: no stamp needed


def recording_weights() -> tuple[Path | None, str]:
    """The verified archive of `FEATURE_MODEL`'s weights where it is on this machine (cached, or named
    by its variable), else None and the reason in one line. Nothing is downloaded: an audit does not
    fetch 17 MB behind the user's back."""
    try:
        archive = local_archive(source=EFFICIENTNET_LITE0_SOURCE)
    except WeightsError as error:
        return None, str(error)
    if archive is None:
        return None, (f"no {FEATURE_MODEL} weights on this machine (`vidcls pretrained {FEATURE_MODEL} --download-only` "
                      f"fetches them once, or set {EFFICIENTNET_LITE0_SOURCE.archive_env}=FILE)")
    return archive, ""


class RecordingFeatures:
    """Callable path, info -> `Signature` whose frames are (2, 1, features): the frames' averaged
    features, then the mirrored frames'."""

    kind = FEATURES_KIND

    def __init__(self, archive: Path) -> None:
        self.archive = archive

    @cached_property
    def network(self) -> EfficientNetLite0:
        """The network, loaded on the first video the cache lacks (a warm run never loads it)."""
        weights = {k: v for k, v in efficientnet_lite0_state_dict(self.archive).items() if not k.startswith("_fc")}
        network = EfficientNetLite0()
        network.load_state_dict(weights)
        return network.eval()

    @torch.inference_mode()
    def __call__(self, path: Path, info: VideoInfo) -> Signature:
        from vidcls.data.probe import read_video

        _, frames = read_video(path, lambda i: segment_indices(i.num_frames, FRAMES, 0.0), resize=SHORT_SIDE, info=info)
        pixels = EfficientNetLite0.from_unit_range(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255)
        views = torch.stack([self._features(view).mean(0) for view in (pixels, pixels.flip(-1))])
        return Signature(views[:, None].numpy(), "", float("nan"), np.empty(0, np.float32))

    def _features(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.network.frame_features(batch) for batch in frames.split(BATCH_FRAMES)])


def recording_signatures(items: list[tuple[Path, VideoInfo]], archive: Path, cache_dir: Path | None) -> dict[Path, Signature]:
    """`RecordingFeatures` of every video, cached beside the thumbnails (one thread: the network
    uses the cores)."""
    found, _ = cached_signatures(items, RecordingFeatures(archive), FEATURES_KIND, cache_dir, workers=1)
    return found


def centred(signatures: list[Signature]) -> list[Signature]:
    """Every view's features centred on the mean of the first views over the folder, at unit length."""
    mean = np.concatenate([s.frames[0] for s in signatures]).mean(0)
    return [replace(s, frames=_unit_rows(s.frames - mean)) for s in signatures]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def shared_recordings(features: list[Signature], thumbs: list[Signature], splits: list[str]) -> list[Pair]:
    """Pairs of one recording across splits, one of them held out (see the module), most evident
    first: ``distance`` is the larger of the pair's two ratios to its neighbourhoods, each over its
    threshold (at most 1)."""
    looks = scored_candidates(centred(features), metric="cosine") if len(features) > 1 else {}
    scenes = scored_candidates(thumbs)
    looks_reference = neighbour_distances(looks, len(features))
    scenes_reference = neighbour_distances(scenes, len(thumbs))
    pairs = []
    for (a, b), distance in looks.items():
        if splits[a] == splits[b] or not {splits[a], splits[b]} & set(HELD_OUT_SPLITS):
            continue
        scene = scenes[a, b] if (a, b) in scenes else frame_set_distance(thumbs[a].frames, thumbs[b].frames)
        evidence = max(
            _relative(distance, looks_reference, a, b) / RECORDING_RATIO,
            _relative(scene, scenes_reference, a, b) / SCENE_RATIO,
        )
        if evidence <= 1.0:
            pairs.append(Pair(a, b, float(evidence), False))
    return sorted(pairs, key=lambda p: (p.distance, p.a, p.b))


def _relative(distance: float, reference: np.ndarray, a: int, b: int) -> float:
    """``distance`` as a share of the nearer of both videos' reference distances; infinite where
    neither has one (a folder too small to say how crowded a neighbourhood is says nothing)."""
    nearer = min(reference[a], reference[b])
    return distance / nearer if np.isfinite(nearer) and nearer > 0 else np.inf
