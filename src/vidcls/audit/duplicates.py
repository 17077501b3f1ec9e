"""Exact and near-duplicate videos, from their signatures.

Two stages, as copy detection usually runs: a cheap nearest-neighbour search on one vector per
video (the mean descriptor) proposes candidate pairs, exact brute force for small folders and an
HNSW index (usearch) past `INDEX_THRESHOLD` videos; then every candidate pair is scored on its
frame descriptors. The pair distance asks how well the frames of one video are found in the
other: for each frame, the distance to the nearest frame of the other video, averaged, in the
direction where that average is lower, at the best pair of views (zooms) where a signature
has several. So a copy trimmed at either end, at another frame rate or cropped a little is
about as close as a plain re-encode, while two distinct clips stay far apart.

A close pair is a copy only where it stands out from its videos' neighbourhoods: its distance
must be at most `DISTINCT_RATIO` of each video's distance to its `NEIGHBOUR_RANK`-th nearest
video. A fixed camera in front of one wall (every clip of the Weizmann actions) makes distinct
clips as close as copies are; there the neighbourhood is just as close, and nothing is listed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from vidcls.audit.signatures import Signature

INDEX_THRESHOLD = 5000  # above this many videos the candidates come from an HNSW index
# Pair distances (RMS grey levels of the low-pass difference) at or under which a pair is listed.
# Chosen between re-encoded copies and distinct clips of one class: see benchmarks/audit.md.
NEAR_DUPLICATE_DISTANCE = 6.0
EMBEDDING_DISTANCE = 0.1  # the same, for model embeddings (1 - cosine similarity)
# A copy is at most this share of the distance from either video to its NEIGHBOUR_RANK-th nearest
# video (planted copies: at most 0.4; other people before one wall: 0.6 and more; benchmarks/audit.md).
DISTINCT_RATIO = 0.5
NEIGHBOUR_RANK = 5
# Neighbours per video proposed for exact scoring: enough that the NEIGHBOUR_RANK-th nearest by
# frames is among them (the mean descriptor ranks neighbours only roughly; at 10 the Weizmann
# references came out twice too far).
CANDIDATES = 4 * NEIGHBOUR_RANK


@dataclass(frozen=True)
class Pair:
    """Two videos whose content matches: indices into the audited list, a < b, and their distance."""

    a: int
    b: int
    distance: float
    exact: bool


def candidate_pairs(summaries: np.ndarray, k: int = CANDIDATES, threshold: int = INDEX_THRESHOLD) -> set[tuple[int, int]]:
    """Pairs (i < j) where j is among i's k nearest summaries or i among j's."""
    n = len(summaries)
    k = min(k, n - 1)
    if k < 1:
        return set()
    neighbours = _index_neighbours(summaries, k) if n > threshold else _brute_force_neighbours(summaries, k)
    return {(min(i, int(j)), max(i, int(j))) for i, row in enumerate(neighbours) for j in row if 0 <= j != i}


def _brute_force_neighbours(summaries: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """The k nearest other summaries of each, by exact squared L2 distance."""
    x = summaries.astype(np.float32)
    norms = (x * x).sum(1)
    out = np.empty((len(x), k), np.int64)
    for start in range(0, len(x), chunk):
        d = norms[start : start + chunk, None] + norms[None, :] - 2 * x[start : start + chunk] @ x.T
        d[np.arange(len(d)), np.arange(start, start + len(d))] = np.inf
        out[start : start + chunk] = np.argpartition(d, k - 1, axis=1)[:, :k]
    return out


def _index_neighbours(summaries: np.ndarray, k: int) -> np.ndarray:
    """The k nearest other summaries of each, from a usearch HNSW index (approximate, scales to millions)."""
    from usearch.index import Index

    index = Index(ndim=summaries.shape[1], metric="l2sq", dtype="f32")
    keys = np.arange(len(summaries), dtype=np.uint64)
    index.add(keys, summaries.astype(np.float32), threads=2)
    found = index.search(summaries.astype(np.float32), k + 1, threads=2)
    return np.asarray(found.keys, dtype=np.int64)[:, : k + 1]


def frame_set_distance(a: np.ndarray, b: np.ndarray, metric: str = "l2") -> float:
    """How far the frames of the better-covered video are from the other's, on average (see module):
    ``a`` and ``b`` are (views, n, d); view 0 of one is compared with every view of the other."""
    pairs = {(0, j) for j in range(len(b))} | {(i, 0) for i in range(len(a))}
    return min(_set_distance(a[i], b[j], metric) for i, j in sorted(pairs))


def _set_distance(a: np.ndarray, b: np.ndarray, metric: str) -> float:
    if metric == "cosine":
        d = 1.0 - _unit(a) @ _unit(b).T
    else:
        d = np.sqrt(np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0))
    return float(min(d.min(1).mean(), d.min(0).mean()))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def find_duplicates(
    signatures: list[Signature], *, metric: str = "l2", max_distance: float | None = None, index_threshold: int = INDEX_THRESHOLD,
) -> list[Pair]:
    """Exact duplicates (same content hash) and near-duplicates (frame-set distance at most
    ``max_distance`` and distinct from the neighbourhood, see the module), closest first."""
    if max_distance is None:
        max_distance = EMBEDDING_DISTANCE if metric == "cosine" else NEAR_DUPLICATE_DISTANCE
    by_content: dict[str, list[int]] = defaultdict(list)
    for i, signature in enumerate(signatures):
        if signature.content:  # model embeddings carry no content hash
            by_content[signature.content].append(i)
    exact = {(a, b) for group in by_content.values() for x, a in enumerate(group) for b in group[x + 1 :]}
    pairs = [Pair(a, b, 0.0, True) for a, b in sorted(exact)]
    scored = scored_candidates(signatures, metric=metric, index_threshold=index_threshold, skip=exact)
    reference = neighbour_distances({**dict.fromkeys(exact, 0.0), **scored}, len(signatures))
    for (a, b), distance in scored.items():
        if distance <= min(max_distance, DISTINCT_RATIO * min(reference[a], reference[b])):
            pairs.append(Pair(a, b, distance, False))
    return sorted(pairs, key=lambda p: (p.distance, p.a, p.b))


def scored_candidates(
    signatures: list[Signature], *, metric: str = "l2", index_threshold: int = INDEX_THRESHOLD, skip: set[tuple[int, int]] = frozenset(),
) -> dict[tuple[int, int], float]:
    """`frame_set_distance` of every candidate pair (`candidate_pairs` of the summaries) but ``skip``."""
    if len(signatures) < 2:
        return {}
    summaries = np.stack([_unit(s.summary[None])[0] if metric == "cosine" else s.summary for s in signatures])
    return {
        (a, b): frame_set_distance(signatures[a].frames, signatures[b].frames, metric)
        for a, b in sorted(candidate_pairs(summaries, threshold=index_threshold) - skip)
    }


def neighbour_distances(distances: dict[tuple[int, int], float], count: int, rank: int = NEIGHBOUR_RANK) -> np.ndarray:
    """Each video's distance to its ``rank``-th nearest among the scored pairs (infinite where it has
    fewer: a tiny folder says nothing of how crowded its neighbourhood is)."""
    around: list[list[float]] = [[] for _ in range(count)]
    for (a, b), distance in distances.items():
        around[a].append(distance)
        around[b].append(distance)
    return np.array([sorted(found)[rank - 1] if len(found) >= rank else np.inf for found in around])
