"""`audit`: one pass over a dataset folder that finds what would make its scores lie.

Duplicates and near-duplicates (pairs across splits are the headline: a test video with a
copy in train is a memory test), likely mislabelled videos (`label_issues`), class imbalance
and outlying files (`outliers`). The cheap part alone, which `vidcls data`, `vidcls train` and
`vidcls eval` run to warn, is `vidcls.audit.leakage`, below training and evaluation.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from vidcls.audit.duplicates import Pair, find_duplicates
from vidcls.audit.label_issues import (
    FOLD_STEPS, FOLDS, RECIPES, model_probabilities, out_of_fold_probabilities, rank_label_issues, signature_probabilities,
)
from vidcls.audit.outliers import class_counts, find_outliers, imbalanced_splits
from vidcls.audit.leakage import leakage_in, records_with_splits, thumbnail_signatures
from vidcls.audit.signatures import SignatureCache, compute_signatures, default_cache_dir
from vidcls.errors import VidclsError
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
    videos: list[dict]  # path, split, label, duration, fps, width, height, brightness
    pairs: list[dict]  # a, b, distance, exact, cross_split
    leakage: dict[str, dict[str, int]]
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
    label_issues: bool = False,
    folds: int = FOLDS,
    recipe: str = RECIPES[0],
    fold_steps: int = FOLD_STEPS,
    seed: int = 0,
    cache_dir: Path | None = None,
    device: str | None = None,
    workers: int | None = None,
) -> AuditResult:
    """Audit a dataset folder (either layout; a flat one split as ``model`` was trained, else by the
    default seed). With ``label_issues``, ``model`` scores the labels instead of the k-fold ``recipe``
    (weaker: see `label_issues`); ``signature="embeddings"`` compares its features instead of
    thumbnails for near-duplicates.
    """
    if recipe not in RECIPES:
        raise VidclsError(f"label-issue recipe must be one of {', '.join(RECIPES)}, not {recipe!r}")
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
    leakage = leakage_in(near, splits)
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
        signature=signature_name, videos=videos,
        pairs=[{**asdict(p), "cross_split": splits[p.a] != splits[p.b]} for p in near],
        leakage=leakage.held, headline=leakage.headline(), counts=counts, imbalance=imbalanced_splits(counts),
        outliers=[asdict(o) for o in find_outliers(labels, measures)],
        failed=[{"path": str(b.path), "reason": b.reason} for b in index.bad_files]
        + [{"path": str(p), "reason": reason} for p, reason in failed.items()],
        seconds=timings,
    )
    if label_issues:
        started = time.perf_counter()
        if model:
            probabilities = model_probabilities(model, records, index.labels, device=device, workers=workers)
            result.label_method = f"the given model {model} (its training split was seen with its labels: weaker evidence there)"
        elif recipe == "signature":
            features = np.stack([s.motion for s in thumbs])
            probabilities = signature_probabilities(features, labels, index.labels, folds=folds, seed=seed)
            result.label_method = f"out-of-fold probabilities, {folds} folds of a logistic regression on global-motion figures"
        else:
            probabilities = out_of_fold_probabilities(
                records, index.labels, folds=folds, steps=fold_steps, seed=seed, device=device, workers=workers,
            )
            result.label_method = f"out-of-fold probabilities, {folds} folds of the motion preset, {fold_steps} steps each"
        result.label_issues = [asdict(i) for i in rank_label_issues(labels, probabilities, index.labels)]
        result.seconds["label_issues"] = time.perf_counter() - started
    return result


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
    cache = SignatureCache(cache_dir or default_cache_dir())
    try:
        embedded, _ = compute_signatures([(r.path, r.info) for r in records], embedder, embedder.kind, cache, workers=1)
    finally:
        cache.close()
    exact = find_duplicates(thumbs, max_distance=-1.0)
    usable = [i for i, r in enumerate(records) if r.path in embedded]
    features = [embedded[records[i].path] for i in usable]
    mean = np.concatenate([s.frames[0] for s in features]).mean(0)
    near = find_duplicates([replace(s, frames=s.frames - mean) for s in features], metric="cosine")
    remapped = [Pair(usable[p.a], usable[p.b], p.distance, False) for p in near if not p.exact]
    known = {(p.a, p.b) for p in exact}
    return exact + [p for p in remapped if (p.a, p.b) not in known], f"embeddings of {model}"
