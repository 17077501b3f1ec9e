"""Leakage: held-out videos with a copy, or a clip of their recording, in another split, whose
scores would measure memory.

`vidcls data`, `vidcls train` and `vidcls eval` warn with the cheap part only (`leakage_warning`):
exact and near-duplicate thumbnails across splits, cached, a few seconds per 1,000 videos. Clips
of one recording need a pretrained network's features (`recordings`, a fraction of a CPU-second
a video), so only `vidcls audit` looks for them; the warning names that command. This module sits
below training and evaluation and imports neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vidcls.audit.duplicates import Pair, find_duplicates
from vidcls.audit.signatures import THUMBNAIL_KIND, cached_signatures, thumbnail_signature
from vidcls.data.discovery import DatasetIndex, VideoRecord

REFERENCE_SPLIT = "train"
HELD_OUT_SPLITS = ("val", "test")


@dataclass
class Leakage:
    """Held-out videos with a copy in another split, and those sharing a recording with a video of
    another split (never counted as copies): each held[split] -> {other split: count}."""

    copies: dict[str, dict[str, int]]
    recordings: dict[str, dict[str, int]] = field(default_factory=dict)

    def headline(self, only: str | None = None) -> list[str]:
        """One sentence per kind and (held-out split, other split), e.g. "3 test videos have a near-copy
        in train", "2 test videos share a recording with a train video"; ``only`` keeps one held-out split."""
        return _sentences(self.copies, only, lambda n, other: f"{'have' if n != 1 else 'has'} a near-copy in {other}") + _sentences(
            self.recordings, only, lambda n, other: f"{'share' if n != 1 else 'shares'} a recording with a {other} video",
        )


def _sentences(held: dict[str, dict[str, int]], only: str | None, predicate: Callable[[int, str], str]) -> list[str]:
    return [
        f"{n} {split} video{'s' if n != 1 else ''} {predicate(n, other)}"
        for split, others in held.items() if only in (None, split) for other, n in others.items() if n
    ]


def records_with_splits(index: DatasetIndex) -> list[tuple[str, VideoRecord]]:
    """(split, record) for every video of the index."""
    return [(split, record) for split, records in index.splits.items() for record in records]


def held_out_counts(pairs: list[Pair], splits: list[str]) -> dict[str, dict[str, int]]:
    """Held-out videos (val, test) paired with a train video, and test videos paired with a val one."""
    held: dict[str, dict[str, set[int]]] = {}
    for pair in pairs:
        for mine, other in ((pair.a, pair.b), (pair.b, pair.a)):
            split, other_split = splits[mine], splits[other]
            if split in HELD_OUT_SPLITS and (other_split == REFERENCE_SPLIT or (split, other_split) == ("test", "val")):
                held.setdefault(split, {}).setdefault(other_split, set()).add(mine)
    return {split: {other: len(found) for other, found in others.items()} for split, others in held.items()}


def thumbnail_signatures(records: list[VideoRecord], cache_dir: Path | None) -> tuple[dict, dict]:
    """Thumbnail signatures of ``records`` (cached under ``cache_dir``, by default `default_cache_dir`), and the failures."""
    return cached_signatures([(r.path, r.info) for r in records], thumbnail_signature, THUMBNAIL_KIND, cache_dir)


def cross_split_copies(index: DatasetIndex, cache_dir: Path | None = None) -> Leakage:
    """The cheap check: exact and near-duplicate thumbnails across splits (see `Leakage`)."""
    entries = records_with_splits(index)
    signatures, _ = thumbnail_signatures([r for _, r in entries], cache_dir)
    kept = [(split, r) for split, r in entries if r.path in signatures]
    pairs = find_duplicates([signatures[r.path] for _, r in kept])
    return Leakage(held_out_counts(pairs, [split for split, _ in kept]))


def leakage_warning(index: DatasetIndex, command: str, split: str | None = None) -> str | None:
    """The warning `vidcls data`, `train` and `eval` print when held-out videos (of ``split`` only,
    when given) have copies in another split, or None: the cheap check (see the module)."""
    leakage = cross_split_copies(index)
    headline = leakage.headline(split)
    if not headline:
        return None
    return (f"{'; '.join(headline)}: scores on them measure memory. List them, and clips of one recording "
            f"across splits: {command}")
