"""Likely mislabelled videos: out-of-fold class probabilities fed to confident learning (cleanlab).

Why out of fold: a model scoring the videos it trained on has learnt their labels, wrong ones
included, so its probabilities hide the errors. Here the videos are split into k folds
(stratified by label, seeded) and each fold is scored by a model trained on the others.

Three recipes:
- "pretrained" (default): a logistic regression on the pooled features of Kinetics-400 I3D
  (`PretrainedFeatures`, computed once per video and cached beside the thumbnails, about 0.7
  CPU-s a video): it sees the scene and the action as Kinetics-400 taught it, so it finds labels
  that contradict either. The "signature"
  classifier is fitted beside it (seconds) and the one whose out-of-fold probabilities explain
  the given labels better (`mean_log_probability`) is used: classes that differ only in the
  direction of motion (the synthetic data's) are the global motion's, real actions the
  network's. Where the weights are not on the machine the audit uses "signature" and says so.
- "signature": the same on the global-motion figures the thumbnails already hold
  (`signatures.global_motion`). Seconds for thousands of videos, as it decodes nothing more;
  it sees only how the picture moves, so it finds labels that contradict the motion (the
  synthetic data's classes), not those that contradict the scene.
- "motion": the `motion` preset trained `defaults.LABEL_FOLD_STEPS` optimizer steps per fold, no flip (left
  and right may be the classes); it sees everything a trained model sees, at the cost of k
  trainings (minutes each on an idle 2-core machine, far more on a busy one).
All are measured in benchmarks/audit.md.

With a given model instead (`model_probabilities`), every video is scored by that one model:
videos of its training split were seen with their labels, so evidence on them is weaker.
"""

from __future__ import annotations

import logging
import math
import tempfile
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vidcls.audit.signatures import Signature, cached_signatures
from vidcls.defaults import EVAL_BATCH_SIZE, LABEL_FOLD_STEPS, LABEL_FOLDS
from vidcls.errors import DatasetError
from vidcls.data.discovery import VideoRecord
from vidcls.data.files import VideoInfo
from vidcls.data.sampling import segment_indices
from vidcls.inference.options import ViewOptions
from vidcls.models.pretrained import (
    FINE_TUNE_CROP, FINE_TUNE_FRAMES, I3D_KINETICS400, WeightsError, converted_model_dir, given_archive, pretrained_model_dir,
)

if TYPE_CHECKING:
    import torch

    from vidcls.models.saving import LoadedModel

logger = logging.getLogger(__name__)

FOLD_BATCH_SIZE = 8
FOLD_PRESET = "motion"
SCORING_VIEWS = ViewOptions(clips=2)  # how a fold model scores its held-out videos
FEATURE_MODEL = I3D_KINETICS400  # the "pretrained" recipe's network
FEATURE_FRAMES = FINE_TUNE_FRAMES  # spread over the whole video, as the pipeline reads it
FEATURE_SHORT_SIDE = FINE_TUNE_CROP  # no crop: the whole picture
FEATURE_LAYER = "Mixed_4f"  # averaged too, beside the pooled Mixed_5c: appearance before the last pooling
FEATURES_KIND = "i3d-label-features-v1"


@dataclass(frozen=True)
class LabelIssue:
    """A video whose label the evidence doubts: its position in the audited list, the label it
    has, the label the model suggests, and cleanlab's label quality (0: surely wrong, 1: surely right)."""

    index: int
    given: str
    suggested: str
    quality: float


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
    """Callable path, info -> `Signature` whose label features are the network's pooled features and
    its `FEATURE_LAYER` averaged, each at unit length (nothing else: no frames to compare)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.maps: list[torch.Tensor] = []
        stamp = (folder / "model.safetensors").stat().st_mtime_ns
        self.kind = f"{FEATURES_KIND}|{folder.resolve()}|{stamp}"

    @cached_property
    def loaded(self) -> LoadedModel:
        """The network, loaded on the first video the cache lacks (a warm run never loads it)."""
        from vidcls.models.loading import load_model

        loaded = load_model(str(self.folder), "cpu")
        loaded.model.eval().backbone[FEATURE_LAYER].register_forward_hook(lambda _m, _a, out: self.maps.append(out))
        return loaded

    def __call__(self, path: Path, info: VideoInfo) -> Signature:
        import torch  # here, not above: `vidcls audit --help` reads this module's settings without torch

        from vidcls.data.probe import read_video

        indices = lambda i: segment_indices(i.num_frames, FEATURE_FRAMES, 0.0)  # noqa: E731
        _, frames = read_video(path, indices, resize=FEATURE_SHORT_SIDE, info=info)
        mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (self.loaded.spec.mean, self.loaded.spec.std))
        self.maps.clear()
        with torch.inference_mode():
            pixels = ((torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255 - mean) / std)[None]
            pooled = self.loaded.model.pooled_features(pixels)[0]
            layer = self.maps[0][0].mean(dim=(1, 2, 3))
            label_features = torch.cat([_unit(pooled), _unit(layer)])
        return Signature(np.empty((1, 0, 0), np.float32), "", float("nan"), label_features.numpy())


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm().clamp_min(1e-12)


def pretrained_signatures(items: list[tuple[Path, VideoInfo]], folder: Path, cache_dir: Path | None) -> dict[Path, Signature]:
    """`PretrainedFeatures` of every video, cached beside the thumbnails (one thread: the network
    uses the cores)."""
    features = PretrainedFeatures(folder)
    found, _ = cached_signatures(items, features, features.kind, cache_dir, workers=1)
    return found


def fold_assignment(labels: list[str], folds: int, seed: int) -> np.ndarray:
    """Fold of every video: each class's videos dealt round-robin in a seeded order, so every fold
    holds every class (needed: a fold model must know all classes)."""
    fold = np.empty(len(labels), np.int64)
    for label in sorted(set(labels)):
        members = np.flatnonzero(np.array(labels) == label)
        if len(members) < folds:
            raise DatasetError(
                f"class {label} has {len(members)} videos; label issues need at least {folds} (one per fold)"
            )
        order = np.random.default_rng([seed, zlib.crc32(label.encode())]).permutation(len(members))
        fold[members[order]] = np.arange(len(members)) % folds
    return fold


def _link_fold(records: list[VideoRecord], where: Path) -> None:
    """A split-layout folder of symbolic links: where/train/<Class>/<n>_<name>, so training reads
    exactly these videos with these labels, and nothing is copied."""
    for number, record in enumerate(records):
        folder = where / "train" / record.label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{number:06d}_{record.path.name}").symlink_to(record.path.resolve())


def out_of_fold_probabilities(
    records: list[VideoRecord], labels: list[str], *, folds: int = LABEL_FOLDS, steps: int = LABEL_FOLD_STEPS, seed: int = 0,
    device: str | None = None, workers: int | None = None,
) -> np.ndarray:
    """(videos, classes) probabilities in ``labels`` order, each from a model that never saw the video."""
    from vidcls.evaluation.evaluate import score_videos
    from vidcls.inference.forward import pick_device
    from vidcls.models.loading import load_model
    from vidcls.training.config import TrainConfig
    from vidcls.training.run import train

    fold = fold_assignment([r.label for r in records], folds, seed)
    probabilities = np.zeros((len(records), len(labels)), np.float32)
    with tempfile.TemporaryDirectory(prefix="vidcls-folds-") as scratch:
        for k in range(folds):
            held_out = [r for r, f in zip(records, fold) if f == k]
            data, output = Path(scratch) / f"data{k}", Path(scratch) / f"model{k}"
            _link_fold([r for r, f in zip(records, fold) if f != k], data)
            epochs = math.ceil(steps / math.ceil((len(records) - len(held_out)) / FOLD_BATCH_SIZE))
            logger.info("label issues: fold %d of %d, %d videos held out, %d epochs", k + 1, folds, len(held_out), epochs)
            train(TrainConfig(
                data=str(data), output=str(output), model=FOLD_PRESET, epochs=epochs, batch_size=FOLD_BATCH_SIZE,
                seed=seed, flip=False, device=device, workers=workers, progress=False,
            ))
            loaded = load_model(str(output), pick_device(device))
            scores, scored, _ = score_videos(
                loaded.model, loaded.spec, held_out, SCORING_VIEWS, batch_size=EVAL_BATCH_SIZE, workers=workers, progress=False,
            )
            rows = np.flatnonzero(fold == k)[scored]
            probabilities[rows] = scores.numpy()[:, [loaded.labels.index(label) for label in labels]]
    return probabilities


def feature_probabilities(features: np.ndarray, given: list[str], labels: list[str], *, folds: int = LABEL_FOLDS, seed: int = 0) -> np.ndarray:
    """(videos, classes) out-of-fold probabilities, in ``labels`` order, of a standardised logistic
    regression on ``features`` (one row per video), folds as `fold_assignment`. BLAS on one thread:
    on a busy machine its threads fight each other (a minute instead of a second)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    fold = fold_assignment(given, folds, seed)
    targets = np.array([labels.index(label) for label in given])
    probabilities = np.zeros((len(given), len(labels)), np.float32)
    with threadpool_limits(1):
        for k in range(folds):
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            model.fit(features[fold != k], targets[fold != k])
            probabilities[np.ix_(fold == k, model.classes_)] = model.predict_proba(features[fold == k])
    return probabilities


def mean_log_probability(probabilities: np.ndarray, given: list[str], labels: list[str]) -> float:
    """How well out-of-fold probabilities explain the given labels (mean log-probability of each
    video's own label; higher is better): labels wrong here and there lower every candidate alike."""
    ids = np.array([labels.index(label) for label in given])
    return float(np.log(np.maximum(probabilities[np.arange(len(ids)), ids], 1e-9)).mean())


def model_probabilities(
    model: str, records: list[VideoRecord], labels: list[str], *, device: str | None = None, workers: int | None = None,
) -> np.ndarray:
    """(videos, classes) probabilities of a given model, in ``labels`` order (see the module docstring)."""
    from vidcls.evaluation.evaluate import check_labels, score_videos
    from vidcls.inference.forward import pick_device
    from vidcls.models.loading import load_model

    loaded = load_model(model, pick_device(device))
    check_labels(labels, loaded)
    scores, scored, _ = score_videos(
        loaded.model, loaded.spec, records, SCORING_VIEWS, batch_size=EVAL_BATCH_SIZE, workers=workers, progress=False,
    )
    probabilities = np.zeros((len(records), len(labels)), np.float32)
    columns = [loaded.labels.index(label) for label in labels]
    probabilities[scored] = scores.numpy()[:, columns]
    probabilities[scored] /= probabilities[scored].sum(1, keepdims=True)
    return probabilities


def rank_label_issues(given: list[str], probabilities: np.ndarray, labels: list[str]) -> list[LabelIssue]:
    """The videos cleanlab's confident learning flags, most surely wrong first. Videos that could not
    be scored (all-zero rows) are left out."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    scored = np.flatnonzero(probabilities.sum(1) > 0)
    ids = np.array([labels.index(label) for label in given])[scored]
    probs = probabilities[scored]
    flagged = find_label_issues(ids, probs, return_indices_ranked_by="self_confidence")
    quality = get_label_quality_scores(ids, probs)
    return [
        LabelIssue(int(scored[i]), given[scored[i]], labels[int(probs[i].argmax())], float(quality[i])) for i in flagged
    ]
