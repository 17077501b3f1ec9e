"""Likely mislabelled videos: out-of-fold class probabilities fed to confident learning (cleanlab).

Why out of fold: a model scoring the videos it trained on has learnt their labels, wrong ones
included, so its probabilities hide the errors. Here the videos are split into k folds
(stratified by label, seeded) and each fold is scored by a model trained on the others.

Two recipes:
- "signature" (default): a logistic regression on the global-motion figures the signatures
  already hold (`signatures.global_motion`). Seconds for thousands of videos, as it decodes
  nothing more; it sees only how the picture moves, so it finds labels that contradict the
  motion (the synthetic data's classes), not those that contradict the scene.
- "motion": the `motion` preset trained `FOLD_STEPS` optimizer steps per fold, no flip (left
  and right may be the classes); it sees everything a trained model sees, at the cost of k
  trainings (minutes each on an idle 2-core machine, far more on a busy one).
Both are measured in benchmarks/audit.md.

With a given model instead (`model_probabilities`), every video is scored by that one model:
videos of its training split were seen with their labels, so evidence on them is weaker.
"""

from __future__ import annotations

import logging
import math
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidcls.defaults import EVAL_BATCH_SIZE
from vidcls.errors import DatasetError
from vidcls.data.discovery import VideoRecord
from vidcls.inference.options import ViewOptions

logger = logging.getLogger(__name__)

FOLDS = 3
RECIPES = ("signature", "motion")
FOLD_STEPS = 600
FOLD_BATCH_SIZE = 8
FOLD_PRESET = "motion"
SCORING_VIEWS = ViewOptions(clips=2)  # how a fold model scores its held-out videos


@dataclass(frozen=True)
class LabelIssue:
    """A video whose label the evidence doubts: its position in the audited list, the label it
    has, the label the model suggests, and cleanlab's label quality (0: surely wrong, 1: surely right)."""

    index: int
    given: str
    suggested: str
    quality: float


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
    records: list[VideoRecord], labels: list[str], *, folds: int = FOLDS, steps: int = FOLD_STEPS, seed: int = 0,
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


def signature_probabilities(features: np.ndarray, given: list[str], labels: list[str], *, folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """(videos, classes) out-of-fold probabilities, in ``labels`` order, of a standardised logistic
    regression on ``features`` (one row per video), folds as `fold_assignment`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fold = fold_assignment(given, folds, seed)
    targets = np.array([labels.index(label) for label in given])
    probabilities = np.zeros((len(given), len(labels)), np.float32)
    for k in range(folds):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(features[fold != k], targets[fold != k])
        probabilities[np.ix_(fold == k, model.classes_)] = model.predict_proba(features[fold == k])
    return probabilities


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
