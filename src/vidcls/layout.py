"""Find the videos of a dataset folder, their labels and splits.

Two layouts are read:
- split: ``ROOT/{train,val,test}/<Class>/...`` as the guide's UCF101 subset ships;
- flat: ``ROOT/<Class>/...``, which vidcls splits itself by UCF101 group (``v_Class_gNN_cNN``)
  so that clips cut from one long recording never land on both sides of a split, falling
  back to per-file splitting where names carry no group.

Every file is probed once (header + first frame) so unreadable files are reported here,
with their reason, instead of failing a training job later.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidcls.errors import DatasetError, VideoReadError
from vidcls.video_io import VIDEO_EXTENSIONS, VideoInfo, is_video_file, probe_video

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
_GROUP_PATTERN = re.compile(r"_g(\d+)_c(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class VideoRecord:
    """One readable video and its class."""

    path: Path
    label: str
    info: VideoInfo

    @property
    def group(self) -> str | None:
        """The UCF101 group (``Class/gNN``): clips of one recording session share it."""
        return group_of(self.path, self.label)


@dataclass(frozen=True)
class BadFile:
    """A file left out of the dataset, and why."""

    path: Path
    reason: str


@dataclass
class DatasetIndex:
    """A dataset as found on disk: label map, records per split, and what was left out."""

    root: Path
    layout: str
    labels: list[str]
    splits: dict[str, list[VideoRecord]]
    bad_files: list[BadFile] = field(default_factory=list)
    leaked_groups: list[str] = field(default_factory=list)

    @property
    def label2id(self) -> dict[str, int]:
        return {label: index for index, label in enumerate(self.labels)}

    def split(self, name: str) -> list[VideoRecord]:
        """The records of one split, or a clear error when the split is empty or absent."""
        records = self.splits.get(name, [])
        if not records:
            found = ", ".join(f"{k} ({len(v)})" for k, v in self.splits.items() if v) or "none"
            raise DatasetError(f"{self.root}: split '{name}' has no readable videos (splits found: {found})")
        return records


def group_of(path: Path, label: str) -> str | None:
    """``label/gNN`` when the file name carries a UCF101 group, else None."""
    match = _GROUP_PATTERN.search(path.stem)
    return f"{label}/g{int(match.group(1)):02d}" if match else None


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _candidate_files(class_dir: Path) -> list[Path]:
    return sorted(p for p in class_dir.rglob("*") if p.is_file() and not p.name.startswith("."))


def _probe(path: Path) -> VideoInfo | BadFile:
    if not is_video_file(path):
        return BadFile(path, f"not a video file (extension '{path.suffix}'; read: {' '.join(VIDEO_EXTENSIONS)})")
    if path.stat().st_size == 0:
        return BadFile(path, "empty file (0 bytes)")
    try:
        return probe_video(path)
    except VideoReadError as error:
        return BadFile(path, error.reason)


def _scan_classes(folder: Path, bad_files: list[BadFile], workers: int) -> list[VideoRecord]:
    """Probe every file under each class folder of ``folder`` (in threads: PyAV releases the GIL)."""
    labelled = [(path, class_dir.name) for class_dir in _class_dirs(folder) for path in _candidate_files(class_dir)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        probed = list(pool.map(lambda item: _probe(item[0]), labelled))
    records = []
    for (path, label), result in zip(labelled, probed):
        if isinstance(result, BadFile):
            logger.warning("skipping %s: %s", result.path, result.reason)
            bad_files.append(result)
        else:
            records.append(VideoRecord(path, label, result))
    return records


def _split_dirs(root: Path) -> dict[str, Path]:
    return {_SPLIT_ALIASES[p.name.lower()]: p for p in _class_dirs(root) if p.name.lower() in _SPLIT_ALIASES}


def discover_dataset(
    root: str | Path,
    *,
    val_ratio: float = 0.15,
    test_ratio: float = 0.15,
    seed: int = 0,
    workers: int = 8,
) -> DatasetIndex:
    """Read a dataset folder in split or flat layout (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    bad_files: list[BadFile] = []
    split_dirs = _split_dirs(root)
    if "train" in split_dirs:
        splits = {name: _scan_classes(folder, bad_files, workers) for name, folder in split_dirs.items()}
        layout = "split"
    else:
        records = _scan_classes(root, bad_files, workers)
        splits = split_records(records, val_ratio=val_ratio, test_ratio=test_ratio, seed=seed)
        layout = "flat"
    all_records = [record for records in splits.values() for record in records]
    if not all_records:
        raise DatasetError(
            f"{root}: found no readable videos. Expected {root}/<Class>/<video> or "
            f"{root}/train/<Class>/<video>; read: {' '.join(VIDEO_EXTENSIONS)}"
            + (f" ({len(bad_files)} unreadable files left out)" if bad_files else "")
        )
    labels = sorted({record.label for record in all_records})
    index = DatasetIndex(root, layout, labels, {s: splits.get(s, []) for s in SPLITS}, bad_files)
    index.leaked_groups = find_leaked_groups(index.splits)
    for group in index.leaked_groups:
        logger.warning("group %s has clips in more than one split: scores on it will be optimistic", group)
    return index


def find_leaked_groups(splits: dict[str, list[VideoRecord]]) -> list[str]:
    """Groups with clips in two or more splits (clips of one recording should stay together)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for split, records in splits.items():
        for record in records:
            if record.group:
                seen[record.group].add(split)
    return sorted(group for group, found_in in seen.items() if len(found_in) > 1)


def _split_counts(num_units: int, val_ratio: float, test_ratio: float) -> tuple[int, int]:
    """(val, test) unit counts; each non-zero ratio gets at least one unit while train keeps one."""
    counts = []
    for ratio in (val_ratio, test_ratio):
        count = int(round(num_units * ratio))
        counts.append(max(count, 1) if ratio > 0 else 0)
    val, test = counts
    while val + test >= num_units and (val or test):
        if test >= val and test:
            test -= 1
        else:
            val -= 1
    return val, test


def split_records(
    records: list[VideoRecord], *, val_ratio: float, test_ratio: float, seed: int
) -> dict[str, list[VideoRecord]]:
    """Split each class by group (or by file where names carry no group), seeded and stable."""
    if val_ratio < 0 or test_ratio < 0 or val_ratio + test_ratio >= 1:
        raise DatasetError(f"split ratios must be >= 0 and leave room for train (val={val_ratio}, test={test_ratio})")
    by_class: dict[str, dict[str, list[VideoRecord]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        by_class[record.label][record.group or str(record.path)].append(record)
    splits: dict[str, list[VideoRecord]] = {name: [] for name in SPLITS}
    for label in sorted(by_class):
        units = sorted(by_class[label])
        order = np.random.default_rng([seed, _stable_hash(label)]).permutation(len(units))
        num_val, num_test = _split_counts(len(units), val_ratio, test_ratio)
        for position, unit_index in enumerate(order):
            split = "test" if position < num_test else "val" if position < num_test + num_val else "train"
            splits[split].extend(by_class[label][units[unit_index]])
    return {name: sorted(recs, key=lambda r: str(r.path)) for name, recs in splits.items()}


def _stable_hash(text: str) -> int:
    """A hash that does not change between runs (Python's str hash is salted)."""
    return zlib.crc32(text.encode("utf-8"))
