"""Find the videos of a dataset folder, their labels and splits.

Two layouts are read:
- split: ``ROOT/{train,val,test}/<Class>/...`` as the guide's UCF101 subset ships (any of the
  three split folders: a folder holding only ``test/`` can be evaluated);
- flat: ``ROOT/<Class>/...``, which vidcls splits itself by UCF101 group (``v_Class_gNN_cNN``)
  so that clips cut from one long recording never land on both sides of a split, falling
  back to per-file splitting where names carry no group.

Training saves the split it used with the model (`save_split`, ``vidcls_split.json``); reading
the same folder for that model (``model_dir=``) takes the split from there, so evaluation never
scores a file the model trained on, whatever seed and ratios training used.

Every file is probed once (header, first frame, packet count) so unreadable files are reported
here, with their reason, and damaged ones are named, instead of failing a training job later.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidcls.errors import DatasetError, VideoReadError
from vidcls.data.files import VIDEO_EXTENSIONS, VideoInfo, is_video_file

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
VAL_RATIO = 0.15  # flat layout: share of each class's groups held out for validation, and for test
TEST_RATIO = 0.15
SPLIT_FILE = "vidcls_split.json"  # saved with a model: the split it was trained with
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
    split_source: str = "folders"  # "folders", "seed N" (flat) or the split file it came from

    @property
    def damaged(self) -> list[BadFile]:
        """Files used although damaged (only their readable frames are), with the reason."""
        return [BadFile(r.path, r.info.damage) for records in self.splits.values() for r in records if r.info.damage]

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


def _probe(path: Path, decode_all: bool) -> VideoInfo | BadFile:
    from vidcls.data.probe import probe_video  # the decoder loads when files are probed, not at import

    if not is_video_file(path):
        return BadFile(path, f"not a video file (extension '{path.suffix}'; read: {' '.join(VIDEO_EXTENSIONS)})")
    if path.stat().st_size == 0:
        return BadFile(path, "empty file (0 bytes)")
    try:
        return probe_video(path, decode_all=decode_all)
    except VideoReadError as error:
        return BadFile(path, error.reason)


def _scan_classes(folder: Path, bad_files: list[BadFile], workers: int, decode_all: bool) -> list[VideoRecord]:
    """Probe every file under each class folder of ``folder`` (in threads: PyAV releases the GIL)."""
    labelled = [(path, class_dir.name) for class_dir in _class_dirs(folder) for path in _candidate_files(class_dir)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        probed = list(pool.map(lambda item: _probe(item[0], decode_all), labelled))
    records = []
    for (path, label), result in zip(labelled, probed):
        if isinstance(result, BadFile):
            logger.warning("skipping %s: %s", result.path, result.reason)
            bad_files.append(result)
        else:
            if result.damage:
                logger.warning("damaged %s: %s", path, result.damage)
            records.append(VideoRecord(path, label, result))
    _check_every_class_has_videos(folder, records, bad_files)
    return records


def _check_every_class_has_videos(folder: Path, records: list[VideoRecord], bad_files: list[BadFile]) -> None:
    """A class folder without one readable video would drop its class silently: name it instead."""
    found = {record.label for record in records}
    for class_dir in _class_dirs(folder):
        if class_dir.name not in found:
            bad = [b for b in bad_files if b.path.is_relative_to(class_dir)]
            detail = f"{len(bad)} unreadable, e.g. {bad[0].path.name}: {bad[0].reason}" if bad else "it holds no files"
            raise DatasetError(
                f"{class_dir}: class folder with no readable video ({detail}); add videos "
                f"({' '.join(VIDEO_EXTENSIONS)}) or remove the folder"
            )


def check_trainable(index: DatasetIndex) -> None:
    """Training needs two classes or more: with one, a classifier has nothing to tell apart."""
    if len(index.labels) < 2:
        raise DatasetError(
            f"{index.root}: found one class ({index.labels[0]}); a classifier needs two or more class folders "
            f"({index.root}/<Class>/ or {index.root}/train/<Class>/)"
        )


def _split_dirs(root: Path) -> dict[str, Path]:
    """The split folders of ``root`` (aliases such as valid/ read as val/), checked for class folders
    that are named like a split: a layout no reading of which is safe."""
    folders = _class_dirs(root)
    splits = {_SPLIT_ALIASES[p.name.lower()]: p for p in folders if p.name.lower() in _SPLIT_ALIASES}
    others = [p.name for p in folders if p.name.lower() not in _SPLIT_ALIASES]
    if splits and others:
        raise DatasetError(
            f"{root}: holds split folders ({', '.join(p.name for p in splits.values())}) beside other folders "
            f"({', '.join(others[:5])}): use {root}/<split>/<Class>/ or {root}/<Class>/; "
            "rename a class folder that is named like a split (train, val, test)"
        )
    for folder in splits.values():
        _check_split_folder(folder)
    return splits


def _check_split_folder(folder: Path) -> None:
    """A split folder holds class folders; videos straight in it, or a class named like a split, mean a class
    folder was taken for a split."""
    if any(is_video_file(p) for p in folder.iterdir() if p.is_file()):
        raise DatasetError(
            f"{folder}: holds videos directly, where a split folder holds class folders; if '{folder.name}' is a "
            f"class, rename it (train, val and test name splits) or put the classes in {folder.parent}/train/"
        )
    nested = [p.name for p in _class_dirs(folder) if p.name.lower() in _SPLIT_ALIASES]
    if nested:
        raise DatasetError(
            f"{folder}: class folder '{nested[0]}' is named like a split; rename it, or move its classes up a level"
        )


def _scan(
    root: Path, split_dirs: dict[str, Path], bad_files: list[BadFile], workers: int, decode_all: bool
) -> dict[str | None, list[VideoRecord]]:
    """Records per split folder, or under None for a flat folder."""
    if split_dirs:
        return {name: _scan_classes(folder, bad_files, workers, decode_all) for name, folder in split_dirs.items()}
    return {None: _scan_classes(root, bad_files, workers, decode_all)}


def discover_dataset(
    root: str | Path,
    *,
    val_ratio: float = VAL_RATIO,
    test_ratio: float = TEST_RATIO,
    seed: int = 0,
    workers: int = 8,
    model_dir: str | Path | None = None,
    decode_all: bool = False,
) -> DatasetIndex:
    """Read a dataset folder in split or flat layout (see the module docstring).

    With ``model_dir``, the split saved with that model applies when it lists files of this
    folder; ``seed`` and the ratios are then unused. With ``decode_all`` every frame of every
    file is decoded, so bad packets mid-file are found and counted (`probe_video`): the health
    check (`vidcls data`) and evaluation ask for it; training names such files as it reads them.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    bad_files: list[BadFile] = []
    split_dirs = _split_dirs(root)
    scanned = _scan(root, split_dirs, bad_files, workers, decode_all)
    layout = "split" if split_dirs else "flat"
    saved = load_split(model_dir) if model_dir is not None else None
    if saved is not None and _lists_files_of(saved, root, scanned):
        splits, source = _saved_splits(root, scanned, saved), str(Path(model_dir) / SPLIT_FILE)
    elif split_dirs:
        splits, source = scanned, "folders"
    else:
        splits = split_records(scanned[None], val_ratio=val_ratio, test_ratio=test_ratio, seed=seed)
        source = f"seed {seed}"
    all_records = [record for records in scanned.values() for record in records]
    if not all_records:
        raise DatasetError(
            f"{root}: found no readable videos. Expected {root}/<Class>/<video> or "
            f"{root}/train/<Class>/<video>; read: {' '.join(VIDEO_EXTENSIONS)}"
            + (f" ({len(bad_files)} unreadable files left out)" if bad_files else "")
        )
    labels = sorted({record.label for record in all_records})
    index = DatasetIndex(root, layout, labels, {s: splits.get(s, []) for s in SPLITS}, bad_files, split_source=source)
    index.leaked_groups = find_leaked_groups(index.splits)
    for group in index.leaked_groups:
        logger.warning("group %s has clips in more than one split: scores on it will be optimistic", group)
    return index


def save_split(index: DatasetIndex, out_dir: str | Path, *, seed: int, val_ratio: float, test_ratio: float) -> Path:
    """Write the split ``index`` holds into a model directory, files relative to the data root, so that
    evaluating that model on the same folder later scores only files it never trained on."""
    path = Path(out_dir) / SPLIT_FILE
    content = {
        "data": str(index.root.resolve()), "layout": index.layout, "seed": seed,
        "val_ratio": val_ratio, "test_ratio": test_ratio,
        "splits": {name: [_relative(r.path, index.root) for r in records] for name, records in index.splits.items()},
        "damaged": [{"path": _relative(bad.path, index.root), "reason": bad.reason} for bad in index.damaged],
    }
    path.write_text(json.dumps(content, indent=1) + "\n")
    return path


def load_split(model_dir: str | Path) -> dict | None:
    """The split saved with a model, or None for a model without one (trained elsewhere, or a hub id)."""
    path = Path(model_dir) / SPLIT_FILE
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
        return saved if isinstance(saved.get("splits"), dict) else None
    except (OSError, ValueError, AttributeError) as error:
        raise DatasetError(f"{path}: not a split file vidcls can read ({error}); remove it to use the folder's split") from error


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _lists_files_of(saved: dict, root: Path, scanned: dict[str | None, list[VideoRecord]]) -> bool:
    """True when the saved split names files this folder holds: it is the folder the model was trained on."""
    listed = {name for names in saved["splits"].values() for name in names}
    return any(_relative(r.path, root) in listed for records in scanned.values() for r in records)


def _saved_splits(root: Path, scanned: dict[str | None, list[VideoRecord]], saved: dict) -> dict[str, list[VideoRecord]]:
    """Records placed as the saved split lists them; files it does not list are left out, with a warning."""
    split_of = {name: split for split, names in saved["splits"].items() for name in names}
    splits: dict[str, list[VideoRecord]] = {name: [] for name in SPLITS}
    new_files = []
    for record in (r for records in scanned.values() for r in records):
        split = split_of.get(_relative(record.path, root))
        if split in splits:
            splits[split].append(record)
        else:
            new_files.append(record.path)
    for path in new_files:
        logger.warning("%s is not in the split the model was trained with: left out of every split", path)
    return splits


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
