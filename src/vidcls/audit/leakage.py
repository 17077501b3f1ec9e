"""Leakage: held-out videos with a copy in another split, whose scores would measure memory.

The cheap part of the audit (`vidcls.audit.core`): exact and near-duplicate thumbnails across
splits, cached. `vidcls data`, `vidcls train` and `vidcls eval` run it to warn, so it sits below
training and evaluation and imports neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vidcls.audit.duplicates import Pair, find_duplicates
from vidcls.audit.signatures import THUMBNAIL_KIND, SignatureCache, compute_signatures, default_cache_dir, thumbnail_signature
from vidcls.data.discovery import DatasetIndex, VideoRecord

REFERENCE_SPLIT = "train"
HELD_OUT_SPLITS = ("val", "test")


@dataclass
class Leakage:
    """Videos of a held-out split with a copy in another split: held[split] -> {other split: count}."""

    held: dict[str, dict[str, int]]

    def headline(self, only: str | None = None) -> list[str]:
        """One sentence per (held-out split, other split) with copies, e.g. "3 test videos have a near-copy
        in train"; ``only`` keeps one held-out split."""
        return [
            f"{n} {split} video{'s' if n != 1 else ''} {'have' if n != 1 else 'has'} a near-copy in {other}"
            for split, others in self.held.items() if only in (None, split) for other, n in others.items() if n
        ]


def records_with_splits(index: DatasetIndex) -> list[tuple[str, VideoRecord]]:
    """(split, record) for every video of the index."""
    return [(split, record) for split, records in index.splits.items() for record in records]


def leakage_in(pairs: list[Pair], splits: list[str]) -> Leakage:
    """Count held-out videos (val, test) with a copy in train, and test videos with one in val."""
    held: dict[str, dict[str, set[int]]] = {}
    for pair in pairs:
        for mine, other in ((pair.a, pair.b), (pair.b, pair.a)):
            split, other_split = splits[mine], splits[other]
            if split in HELD_OUT_SPLITS and (other_split == REFERENCE_SPLIT or (split, other_split) == ("test", "val")):
                held.setdefault(split, {}).setdefault(other_split, set()).add(mine)
    return Leakage({split: {other: len(found) for other, found in others.items()} for split, others in held.items()})


def thumbnail_signatures(records: list[VideoRecord], cache_dir: Path | None) -> tuple[dict, dict]:
    """Thumbnail signatures of ``records`` (cached under ``cache_dir``, by default `default_cache_dir`), and the failures."""
    cache = SignatureCache(cache_dir or default_cache_dir())
    try:
        return compute_signatures([(r.path, r.info) for r in records], thumbnail_signature, THUMBNAIL_KIND, cache)
    finally:
        cache.close()


def cross_split_copies(index: DatasetIndex, cache_dir: Path | None = None) -> Leakage:
    """The cheap check: exact and near-duplicate thumbnails across splits (see `Leakage`)."""
    entries = records_with_splits(index)
    signatures, _ = thumbnail_signatures([r for _, r in entries], cache_dir)
    kept = [(split, r) for split, r in entries if r.path in signatures]
    pairs = find_duplicates([signatures[r.path] for _, r in kept])
    return leakage_in(pairs, [split for split, _ in kept])


def leakage_warning(index: DatasetIndex, command: str, split: str | None = None) -> str | None:
    """The warning `vidcls data`, `train` and `eval` print when held-out videos (of ``split`` only,
    when given) have copies in another split, or None."""
    leakage = cross_split_copies(index)
    headline = leakage.headline(split)
    if not headline:
        return None
    return f"{'; '.join(headline)}: scores on them measure memory. List them: {command}"
