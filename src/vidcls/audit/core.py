"""`audit`: one pass over a dataset folder that finds what would make its scores lie.

Duplicates and near-duplicates, and clips of one recording (`recordings`; pairs across splits
are the headline: a test video with a copy, or a sibling clip, in train is a memory test),
likely mislabelled videos (`label_issues`), class imbalance and outlying files (`outliers`).
The cheap part alone, which `vidcls data`, `vidcls train` and `vidcls eval` run to warn, is
`vidcls.audit.leakage`, below training and evaluation.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from vidcls.audit.duplicates import Pair, find_duplicates
from vidcls.audit.label_issues import (
    FEATURE_MODEL, feature_model_dir, feature_probabilities, mean_log_probability,
    model_probabilities, out_of_fold_probabilities, pretrained_signatures, rank_label_issues,
)
from vidcls.audit.outliers import class_counts, find_outliers, imbalanced_splits
from vidcls.audit.leakage import Leakage, held_out_counts, records_with_splits, thumbnail_signatures
from vidcls.audit import recordings as recording_check
from vidcls.audit.signatures import Signature, cached_signatures
from vidcls.errors import VidclsError
from vidcls.defaults import LABEL_FOLD_RECIPES, LABEL_FOLD_STEPS, LABEL_FOLDS
from vidcls.data.discovery import VideoRecord, discover_dataset

logger = logging.getLogger(__name__)

SIGNATURES = ("thumbnails", "embeddings")


@dataclass
class AuditResult:
    """Everything the audit found, as plain data; `as_dict()` is the JSON schema. Positions (``a``,
    ``b``, ``index``) point into ``videos``."""

    root: str
    layout: str
    split_source: str
    labels: list[str]
    signature: str  # what near-duplicates were compared on
    recordings_method: str  # what shared recordings were found with, or why they were not looked for
    videos: list[dict]  # path, split, label, duration, fps, width, height, brightness
    pairs: list[dict]  # a, b, distance, exact, cross_split, kind ("copy" or "recording")
    leakage: dict[str, dict[str, dict[str, int]]]  # kind ("copies", "recordings") -> split -> other split -> videos
    headline: list[str]
    counts: dict[str, dict[str, int]]
    imbalance: dict[str, float]
    outliers: list[dict]
    label_issues: list[dict] | None = None
    label_method: str | None = None
    failed: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def run_audit(
    data: str | Path,
    *,
    model: str | None = None,
    signature: str = SIGNATURES[0],
    pretrained: bool = True,
    label_issues: bool = False,
    folds: int = LABEL_FOLDS,
    recipe: str = LABEL_FOLD_RECIPES[0],
    fold_steps: int = LABEL_FOLD_STEPS,
    seed: int = 0,
    cache_dir: Path | None = None,
    device: str | None = None,
    workers: int | None = None,
) -> AuditResult:
    """Audit a dataset folder (either layout; a flat one split as ``model`` was trained, else by the
    default seed). With ``pretrained``, where their weights are on this machine, ImageNet frame
    features find clips of one recording across splits (`recordings`) and Kinetics-400 I3D's feed the
    ``"pretrained"`` label recipe (without them: no recording check, and that recipe falls back to
    ``"signature"``; the result says so). With ``label_issues``, ``model`` scores the labels instead of the k-fold ``recipe``
    (weaker: see `label_issues`); ``signature="embeddings"`` compares its features instead of
    thumbnails for near-duplicates.
    """
    if recipe not in LABEL_FOLD_RECIPES:
        raise VidclsError(f"label-issue recipe must be one of {', '.join(LABEL_FOLD_RECIPES)}, not {recipe!r}")
    if signature not in SIGNATURES or (signature == "embeddings" and not model):
        raise VidclsError(f"signature must be one of {', '.join(SIGNATURES)} (embeddings need a model), not {signature!r}")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    index = discover_dataset(data, model_dir=model if model and Path(model).is_dir() else None)
    entries = records_with_splits(index)
    signatures, failed = thumbnail_signatures([r for _, r in entries], cache_dir)
    timings["signatures"] = time.perf_counter() - started
    entries = [(split, r) for split, r in entries if r.path in signatures]
    records = [r for _, r in entries]
    splits = [split for split, _ in entries]
    thumbs = [signatures[r.path] for r in records]
    started = time.perf_counter()
    embed_with = model if signature == "embeddings" else None
    near, signature_name = _near_duplicate_pairs(thumbs, records, embed_with, cache_dir, device)
    timings["duplicates"] = time.perf_counter() - started
    started = time.perf_counter()
    copies = {(p.a, p.b) for p in near}
    recordings, recordings_method = (
        _recording_pairs(thumbs, records, splits, copies, cache_dir) if pretrained else ([], f"not checked: {NO_PRETRAINED}")
    )
    timings["recordings"] = time.perf_counter() - started
    leakage = Leakage(held_out_counts(near, splits), held_out_counts(recordings, splits))
    videos = [
        {"path": str(r.path), "split": split, "label": r.label, "duration": r.info.duration, "fps": r.info.fps,
         "width": r.info.width, "height": r.info.height, "brightness": s.brightness}
        for (split, r), s in zip(entries, thumbs)
    ]
    labels = [r.label for r in records]
    measures = {
        "duration": np.array([r.info.duration for r in records]), "fps": np.array([r.info.fps for r in records]),
        "pixels": np.array([float(r.info.width * r.info.height) for r in records]),
        "brightness": np.array([s.brightness for s in thumbs]),
    }
    counts = class_counts(splits, labels)
    result = AuditResult(
        root=str(index.root), layout=index.layout, split_source=index.split_source, labels=index.labels,
        signature=signature_name, recordings_method=recordings_method, videos=videos,
        pairs=[{**asdict(p), "cross_split": splits[p.a] != splits[p.b], "kind": "copy"} for p in near]
        + [{**asdict(p), "cross_split": True, "kind": "recording"} for p in recordings],
        leakage={"copies": leakage.copies, "recordings": leakage.recordings}, headline=leakage.headline(),
        counts=counts, imbalance=imbalanced_splits(counts),
        outliers=[asdict(o) for o in find_outliers(labels, measures)],
        failed=[{"path": str(b.path), "reason": b.reason} for b in index.bad_files]
        + [{"path": str(p), "reason": reason} for p, reason in failed.items()],
        seconds=timings,
    )
    if label_issues:
        started = time.perf_counter()
        probabilities, result.label_method = _label_probabilities(
            records, index.labels, thumbs, model=model, recipe=recipe, pretrained=pretrained, folds=folds,
            fold_steps=fold_steps, seed=seed, cache_dir=cache_dir, device=device, workers=workers,
        )
        result.label_issues = [asdict(i) for i in rank_label_issues(labels, probabilities, index.labels)]
        result.seconds["label_issues"] = time.perf_counter() - started
    return result


NO_PRETRAINED = "--no-pretrained"


def _recording_pairs(
    thumbs: list[Signature], records: list[VideoRecord], splits: list[str], copies: set[tuple[int, int]],
    cache_dir: Path | None,
) -> tuple[list[Pair], str]:
    """Cross-split pairs of one recording (`recordings.shared_recordings`) that are not already copies,
    and a line saying what found them, or why they were not looked for (then nothing fails: the
    audit goes on without them)."""
    archive, missing = recording_check.recording_weights()
    if archive is None:
        logger.warning("shared recordings not checked: %s", missing)
        return [], f"not checked: {missing}"
    features = recording_check.recording_signatures(
        [(r.path, r.info) for r in records], archive, cache_dir,
    )
    usable = [i for i, r in enumerate(records) if r.path in features]
    found = recording_check.shared_recordings(
        [features[records[i].path] for i in usable], [thumbs[i] for i in usable], [splits[i] for i in usable],
    )
    pairs = [Pair(*sorted((usable[p.a], usable[p.b])), p.distance, False) for p in found]
    method = (f"ImageNet features of {recording_check.FEATURE_MODEL} over {recording_check.FRAMES} frames of each video, "
              "with the thumbnails")
    return [p for p in pairs if (p.a, p.b) not in copies], method


def _pretrained_features(records: list[VideoRecord], cache_dir: Path | None) -> tuple[dict[Path, Signature], str]:
    """The pretrained network's features of every video it could read, or none and why (then the
    label recipe falls back to the global motion)."""
    folder, missing = feature_model_dir()
    if folder is None:
        logger.warning("label issues from global motion: %s", missing)
        return {}, missing
    return pretrained_signatures([(r.path, r.info) for r in records], folder, cache_dir), ""


MOTION_EVIDENCE = "global-motion figures"


def _motion_probabilities(
    records: list[VideoRecord], labels: list[str], thumbs: list[Signature], *, folds: int, seed: int,
) -> np.ndarray:
    """Out-of-fold probabilities of the "signature" recipe: the thumbnails' global-motion figures."""
    features = np.stack([s.label_features for s in thumbs])
    return feature_probabilities(features, [r.label for r in records], labels, folds=folds, seed=seed)


def _pretrained_or_motion(
    records: list[VideoRecord], labels: list[str], thumbs: list[Signature], features: dict[Path, Signature], *,
    folds: int, seed: int,
) -> tuple[np.ndarray, str]:
    """The "pretrained" recipe: out-of-fold probabilities from the pretrained features and from the
    global motion, the pair that explains the given labels better (`label_issues.mean_log_probability`)."""
    usable = [i for i, r in enumerate(records) if r.path in features]
    given = [records[i].label for i in usable]
    pretrained = np.zeros((len(records), len(labels)), np.float32)
    pretrained[usable] = feature_probabilities(
        np.stack([features[records[i].path].label_features for i in usable]), given, labels, folds=folds, seed=seed,
    )
    motion = _motion_probabilities(records, labels, thumbs, folds=folds, seed=seed)
    fit = {name: mean_log_probability(p[usable], given, labels) for name, p in (("pretrained", pretrained), ("motion", motion))}
    chosen, other = ("pretrained", "motion") if fit["pretrained"] >= fit["motion"] else ("motion", "pretrained")
    evidence = {"pretrained": f"the pretrained {FEATURE_MODEL} features", "motion": MOTION_EVIDENCE}
    method = (f"out-of-fold probabilities, {folds} folds of a logistic regression on {evidence[chosen]} (they explain the "
              f"given labels better than {evidence[other]}: mean log-probability {fit[chosen]:.2f} against {fit[other]:.2f})")
    return (pretrained if chosen == "pretrained" else motion), method


def _label_probabilities(
    records: list[VideoRecord], labels: list[str], thumbs: list[Signature], *, model: str | None, recipe: str,
    pretrained: bool, folds: int, fold_steps: int, seed: int, cache_dir: Path | None, device: str | None,
    workers: int | None,
) -> tuple[np.ndarray, str]:
    """(videos, classes) probabilities for confident learning, and the sentence naming their evidence."""
    if model:
        probabilities = model_probabilities(model, records, labels, device=device, workers=workers)
        return probabilities, f"the given model {model} (its training split was seen with its labels: weaker evidence there)"
    missing = NO_PRETRAINED
    if recipe == "pretrained" and pretrained:
        features, missing = _pretrained_features(records, cache_dir)
        if features:
            return _pretrained_or_motion(records, labels, thumbs, features, folds=folds, seed=seed)
    if recipe == "motion":
        probabilities = out_of_fold_probabilities(
            records, labels, folds=folds, steps=fold_steps, seed=seed, device=device, workers=workers,
        )
        return probabilities, f"out-of-fold probabilities, {folds} folds of the motion preset, {fold_steps} steps each"
    probabilities = _motion_probabilities(records, labels, thumbs, folds=folds, seed=seed)
    method = f"out-of-fold probabilities, {folds} folds of a logistic regression on {MOTION_EVIDENCE}"
    return probabilities, method if recipe == "signature" else f"{method}; no pretrained features ({missing})"


def _near_duplicate_pairs(
    thumbs: list, records: list[VideoRecord], model: str | None, cache_dir: Path | None, device: str | None,
) -> tuple[list[Pair], str]:
    """Pairs from thumbnails, or, with a model, exact pairs from thumbnails and near pairs from its
    features, centred on their mean over the folder (features after a ReLU all point one way, so
    their raw cosines are all near 1)."""
    if not model:
        return find_duplicates(thumbs), "thumbnails (low-frequency DCT of Y, Cb, Cr)"
    from vidcls.audit.embeddings import ModelEmbedder

    embedder = ModelEmbedder(model, device)
    embedded, _ = cached_signatures([(r.path, r.info) for r in records], embedder, embedder.kind, cache_dir, workers=1)
    exact = find_duplicates(thumbs, max_distance=-1.0)
    usable = [i for i, r in enumerate(records) if r.path in embedded]
    features = [embedded[records[i].path] for i in usable]
    mean = np.concatenate([s.frames[0] for s in features]).mean(0)
    near = find_duplicates([replace(s, frames=s.frames - mean) for s in features], metric="cosine")
    remapped = [Pair(usable[p.a], usable[p.b], p.distance, False) for p in near if not p.exact]
    known = {(p.a, p.b) for p in exact}
    return exact + [p for p in remapped if (p.a, p.b) not in known], f"embeddings of {model}"
