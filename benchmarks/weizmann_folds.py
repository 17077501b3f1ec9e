"""The real clips of benchmarks/transfer.md: the Weizmann actions in three folds split by actor.

    python benchmarks/weizmann_folds.py SRC OUT

SRC holds the 90 Weizmann videos as ``<class>/<actor>_<class>.avi`` (10 classes, 9 actors; the
folder ``data/WIS/video`` of the GitHub repository hueihan/Action_Recognition has them in that form).
The videos are not vidcls's to redistribute: keep them, and OUT, outside the repository.

Writes ``OUT/fold{1,2,3}/{train,val,test}/<class>/`` as symbolic links into SRC. Each actor is one
group (every clip of an actor is filmed in one session), so no actor is in two splits of a fold:
fold k tests on three actors, validates on one of the other six and trains on the remaining five,
and the three folds' test actors cover all nine, so every video is scored exactly once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ACTORS = ["daria", "denis", "eli", "ido", "ira", "lena", "lyova", "moshe", "shahar"]


def folds() -> list[dict[str, list[str]]]:
    """Per fold, the actors of each split."""
    out = []
    for k in range(3):
        test = ACTORS[3 * k : 3 * k + 3]
        rest = [a for a in ACTORS if a not in test]
        out.append({"train": rest[1:], "val": rest[:1], "test": test})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    videos = sorted(args.src.resolve().glob("*/*.avi"))
    classes = sorted({v.parent.name for v in videos})
    if len(videos) != 90 or len(classes) != 10:
        raise SystemExit(f"{args.src}: expected 90 videos in 10 class folders, found {len(videos)} in {len(classes)}")
    for k, splits in enumerate(folds(), start=1):
        for split, actors in splits.items():
            for video in videos:
                if video.name.split("_")[0] in actors:
                    link = args.out / f"fold{k}" / split / video.parent.name / video.name
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(video)
        print(f"fold{k}: " + "; ".join(f"{split} {' '.join(actors)}" for split, actors in splits.items()))


if __name__ == "__main__":
    main()
