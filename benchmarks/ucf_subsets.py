"""Real UCF101 clips at the guide's size, split by group: the data of benchmarks/real.md.

    python benchmarks/ucf_subsets.py SRC OUT --protocol dev|final

SRC holds UCF101 videos as ``<Class>/v_<Class>_gNN_cNN.avi`` (the folder ``data/UCF-101`` of the
GitHub repository mohanrajmit/Human-Action-Classification- has the first 9 classes in that form).
UCF101 asks for citation and grants no redistribution: keep SRC, and OUT, outside the repository.

Writes ``OUT/{train,val,test}/<Class>/`` as symbolic links into SRC. A group (gNN) is the clips
cut from one long video, so no group is in two splits. Per class, with a fixed seed, the groups
8-25 are shuffled and taken in that order: the first gives `VAL` validation videos, the next ones
(until `TEST` videos are reached) the development test set, the next ones `TRAIN` training videos;
each split takes that many of its groups' clips at random (one generator per class, so both
protocols draw the same train and val). Groups 1-7 are UCF101 split 1's test
groups:

- ``dev``: train, val and test all from groups 8-25 (choose settings here);
- ``final``: the same train and val, tested on `TEST` videos a class drawn from groups 1-7
  (measured once, at the end).
"""

from __future__ import annotations

import argparse
import random
import re
from collections import defaultdict
from pathlib import Path

TRAIN, VAL, TEST = 30, 4, 20
FINAL_TEST_GROUPS = range(1, 8)
SEED = 25
NAME = re.compile(r"v_(?P<label>.+)_g(?P<group>\d+)_c\d+\.avi$")


def groups_of(videos: list[Path]) -> dict[int, list[Path]]:
    """The videos of one class by group number."""
    groups: dict[int, list[Path]] = defaultdict(list)
    for video in sorted(videos):
        groups[int(NAME.match(video.name)["group"])].append(video)
    return groups


def take(groups: list[list[Path]], count: int, rng: random.Random) -> tuple[list[Path], list[list[Path]]]:
    """``count`` videos drawn at random from the fewest leading ``groups`` that hold them, and the groups left."""
    used, pool = 0, []
    while len(pool) < count:
        if used == len(groups):
            raise SystemExit(f"not enough groups for {count} videos")
        pool += groups[used]
        used += 1
    return sorted(rng.sample(pool, count)), groups[used:]


def class_splits(videos: list[Path], protocol: str, rng: random.Random) -> dict[str, list[Path]]:
    """One class's videos per split (see the module doc)."""
    groups = groups_of(videos)
    dev_groups = [groups[g] for g in sorted(groups) if g not in FINAL_TEST_GROUPS]
    rng.shuffle(dev_groups)
    val, rest = take(dev_groups, VAL, rng)
    dev_test, rest = take(rest, TEST, rng)
    train, _ = take(rest, TRAIN, rng)
    if protocol == "dev":
        return {"train": train, "val": val, "test": dev_test}
    final_pool = [v for g in sorted(groups) if g in FINAL_TEST_GROUPS for v in groups[g]]
    return {"train": train, "val": val, "test": sorted(rng.sample(final_pool, TEST))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--protocol", choices=["dev", "final"], required=True)
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out}: exists and is not empty")
    by_class: dict[str, list[Path]] = defaultdict(list)
    for video in args.src.resolve().glob("*/*.avi"):
        if NAME.match(video.name):
            by_class[video.parent.name].append(video)
    if not by_class:
        raise SystemExit(f"{args.src}: no <Class>/v_<Class>_gNN_cNN.avi videos")
    counts: dict[str, int] = defaultdict(int)
    for label in sorted(by_class):
        for split, videos in class_splits(by_class[label], args.protocol, random.Random(f"{SEED}:{label}")).items():
            for video in videos:
                link = args.out / split / label / video.name
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(video)
            counts[split] += len(videos)
    print(f"{args.out} ({args.protocol}, {len(by_class)} classes): " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
