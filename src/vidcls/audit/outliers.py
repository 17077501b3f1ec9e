"""Class imbalance, and videos whose duration, frame rate, size or brightness lie far from their class.

A robust z-score per class: distance from the class median in units of the median absolute
deviation (scaled to a standard deviation), with a floor of `RELATIVE_FLOOR` of the median so a
class whose videos all share one frame rate does not flag a 25.02 fps file.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

OUTLIER_Z = 4.0
RELATIVE_FLOOR = 0.05  # the smallest spread assumed, as a share of the class median
MIN_CLASS_VIDEOS = 5  # fewer videos in a class give no reliable median
IMBALANCE_RATIO = 3.0  # a split whose largest class has this many times its smallest's videos is called imbalanced


@dataclass(frozen=True)
class Outlier:
    """One video's measure far from its class: position in the audited list, what, its value, the class median."""

    index: int
    measure: str
    value: float
    class_median: float
    z: float


def find_outliers(labels: list[str], measures: dict[str, np.ndarray]) -> list[Outlier]:
    """Videos whose value of any measure (name -> one value per video, NaN when unknown) lies more
    than `OUTLIER_Z` robust deviations from their class median, farthest first."""
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_class[label].append(i)
    found = []
    for name, values in measures.items():
        for members in by_class.values():
            known = [i for i in members if np.isfinite(values[i])]
            if len(known) < MIN_CLASS_VIDEOS:
                continue
            median = float(np.median(values[known]))
            spread = max(1.4826 * float(np.median(np.abs(values[known] - median))), RELATIVE_FLOOR * abs(median), 1e-9)
            for i in known:
                z = (float(values[i]) - median) / spread
                if abs(z) > OUTLIER_Z:
                    found.append(Outlier(i, name, float(values[i]), median, z))
    return sorted(found, key=lambda o: -abs(o.z))


def class_counts(splits: list[str], labels: list[str]) -> dict[str, dict[str, int]]:
    """Videos per split and class: counts[split][label], every label present in every split that has videos."""
    counts = Counter(zip(splits, labels))
    return {s: {label: counts[(s, label)] for label in sorted(set(labels))} for s in sorted(set(splits))}


def imbalanced_splits(counts: dict[str, dict[str, int]]) -> dict[str, float]:
    """Split -> largest / smallest class count, for splits at or above `IMBALANCE_RATIO` (inf when a class is missing)."""
    ratios = {}
    for split, per_class in counts.items():
        most, least = max(per_class.values()), min(per_class.values())
        ratio = most / least if least else float("inf")
        if ratio >= IMBALANCE_RATIO:
            ratios[split] = ratio
    return ratios
