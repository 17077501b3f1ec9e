"""What Kinetics-400 pretraining buys on the embedded synthetic motion data: the I3D linear probe
with 5, 10 and 30 training videos per class (benchmarks/transfer.md).

    python benchmarks/transfer.py WORK [--difficulty easy hard] [--frames 8] [--crop 112]
    python benchmarks/transfer.py WORK --subsets OUT [--sizes 5 10 30]

Writes `vidcls sample` data (45 clips per class; by group, 29 train / 8 val / 8 test) under WORK, computes
each video's I3D clip features once (what `vidcls train --freeze-backbone` computes), then trains a
head per training size on the first N videos per class of train + val (groups never shared with
test) for `training/linear_probe.PROBE_EPOCHS` epochs (no epoch picked on validation data: they train it) and
scores the test split. Prints a Markdown table row
per run: test top-1, and the seconds of features (for that N's training videos) and of the head.

With ``--subsets OUT`` it computes nothing: it writes ``OUT/<difficulty><N>/{train,val,test}`` as
symbolic links, train being the same first N videos per class that the probe trains on, val the
rest of the val split and test the test split, for training other models (`vidcls train`) on
exactly the probe's videos.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import torch

from vidcls.data.discovery import discover_dataset
from vidcls.training.linear_probe import PROBE_EPOCHS, PROBE_LR, clip_features, head_accuracy, head_epoch
from vidcls.models.loading import create_model
from vidcls.models.pretrained import I3D_KINETICS400
from vidcls.data.synthetic import write_synthetic_dataset
from vidcls.training.loop import TrainConfig

PER_CLASS = 45


def first_per_class(records, n: int):
    """The first ``n`` videos of each class, in the index's order."""
    taken: dict[str, int] = {}
    chosen = []
    for record in records:
        if taken.get(record.label, 0) < n:
            taken[record.label] = taken.get(record.label, 0) + 1
            chosen.append(record)
    return chosen


def write_subsets(index, out: Path, difficulty: str, sizes: list[int]) -> None:
    """Symlinked split folders of the first N videos per class of train + val (see the module doc)."""
    pool = index.split("train") + index.split("val")
    for n in sizes:
        train = first_per_class(pool, n)
        taken = {id(r) for r in train}
        splits = {"train": train, "val": [r for r in index.split("val") if id(r) not in taken], "test": index.split("test")}
        for split, records in splits.items():
            for record in records:
                link = out / f"{difficulty}{n}" / split / record.label / Path(record.path).name
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(Path(record.path).resolve())
        print(f"{out / f'{difficulty}{n}'}: " + ", ".join(f"{k} {len(v)}" for k, v in splits.items()), flush=True)


def run(work: Path, difficulty: str, frames: int, crop: int, sizes: list[int], subsets: Path | None = None) -> None:
    data = work / difficulty
    if not data.exists():
        write_synthetic_dataset(data, per_class=PER_CLASS, difficulty=difficulty)
    index = discover_dataset(str(data))
    if subsets is not None:
        write_subsets(index, subsets, difficulty, sizes)
        return
    loaded = create_model(I3D_KINETICS400, index.labels, num_frames=frames)
    spec = replace(loaded.spec, crop_size=crop, resize_short_side=round(crop * 256 / 224))
    model, device = loaded.model.eval(), torch.device("cpu")
    pool = index.split("train") + index.split("val")
    started = time.perf_counter()
    pool_x, pool_y = clip_features(model, pool, index.label2id, spec, device, workers=1)
    per_video = (time.perf_counter() - started) / max(1, len(pool_y))
    test_x, test_y = clip_features(model, index.split("test"), index.label2id, spec, device, workers=1)
    config = TrainConfig(data=str(data), output="", batch_size=8)
    for n in sizes:
        chosen = {id(r) for r in first_per_class(pool, n)}
        keep = torch.tensor([id(r) in chosen for r in pool])
        x, y = pool_x[keep], pool_y[keep]
        torch.manual_seed(0)
        model.classifier.reset_parameters()
        optimizer = torch.optim.AdamW(model.classifier.parameters(), lr=PROBE_LR, weight_decay=config.weight_decay)
        generator = torch.Generator().manual_seed(0)
        head_start = time.perf_counter()
        for _ in range(PROBE_EPOCHS):
            head_epoch(model, x, y, optimizer, config, generator, device)
        head_seconds = time.perf_counter() - head_start
        accuracy = head_accuracy(model, test_x, test_y, device)
        print(
            f"| {difficulty} | {n} | I3D linear probe ({frames} x {crop} px) | {accuracy:.3f} ({len(test_y)} videos) | "
            f"{per_video * len(y) / 60:.1f} + {head_seconds / 60:.2f} | {os.getloadavg()[0]:.1f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--difficulty", nargs="+", default=["easy", "hard"])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--crop", type=int, default=112)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 30])
    parser.add_argument("--subsets", type=Path, help="write the training subsets as split folders here, and nothing else")
    args = parser.parse_args()
    if args.subsets is None:
        print("| data | train videos / class | model | test top-1 | minutes: features + head | load |")
        print("|---|---|---|---|---|---|")
    for difficulty in args.difficulty:
        run(args.work, difficulty, args.frames, args.crop, args.sizes, args.subsets)


if __name__ == "__main__":
    main()
