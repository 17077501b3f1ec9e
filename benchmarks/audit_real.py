"""Real footage for `vidcls audit`: UCF101 clips split by clip or by group, and scoring against the groups.

    python benchmarks/audit_real.py layout SRC OUT --split clip|group [--per-class 40] [--groups 8-25] [--seed 1]
    python benchmarks/audit_real.py score OUT AUDIT_JSON

``layout`` links (symbolic links, nothing copied) ``--per-class`` videos of each class of SRC
(UCF101's ``<Class>/v_<Class>_gNN_cNN.avi``, found at any depth, links followed), from the groups
given, into OUT/{train,test}/<Class>/: ``--split clip`` puts a quarter of the clips in test at
random, ignoring groups (siblings of one recording land on both sides); ``--split group`` puts a
quarter of the groups in test. The groups (in the names) are the truth here and nothing else:
the audit never reads them.

``score`` reads `vidcls audit OUT --json AUDIT_JSON` and prints, for test videos: how many have a
same-group clip in train, how many of those are flagged (a copy or a shared recording with a
train video), how many flagged pairs are truly same-group, and how many test videos are flagged
in all. ``flip`` moves ``--share`` of OUT's training videos to another class folder (OUT/flipped.json
lists them, as `audit_plant.py` does, for `audit_score.py --label-issues`).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

NAME = re.compile(r"v_(?P<label>\w+?)_g(?P<group>\d+)_c(?P<clip>\d+)\.avi$", re.IGNORECASE)
TEST_SHARE = 0.25


def group_of(path: str | Path) -> str:
    """Class and group of a UCF101 file name, e.g. 'Basketball_g08'."""
    found = NAME.search(Path(path).name)
    if not found:
        raise SystemExit(f"{path}: not a UCF101 name (v_Class_gNN_cNN.avi)")
    return f"{found['label']}_g{found['group']}"


def layout(src: Path, out: Path, split: str, per_class: int, groups: range, seed: int) -> None:
    if out.exists():
        raise SystemExit(f"{out} exists: choose a new folder")
    videos = sorted({p.resolve() for p in src.rglob("*.avi") if NAME.search(p.name)})
    videos = [v for v in videos if int(NAME.search(v.name)["group"]) in groups]
    rng = np.random.default_rng(0)
    chosen = []
    for label in sorted({v.parent.name for v in videos}):
        members = [v for v in videos if v.parent.name == label]
        chosen += [members[i] for i in rng.choice(len(members), min(per_class, len(members)), replace=False)]
    split_rng = np.random.default_rng(seed)
    if split == "clip":
        test = set(split_rng.choice(len(chosen), round(TEST_SHARE * len(chosen)), replace=False).tolist())
        in_test = [i in test for i in range(len(chosen))]
    else:
        names = sorted({group_of(v) for v in chosen})
        test_groups = set(split_rng.choice(names, round(TEST_SHARE * len(names)), replace=False).tolist())
        in_test = [group_of(v) in test_groups for v in chosen]
    for video, is_test in zip(chosen, in_test):
        link = out / ("test" if is_test else "train") / video.parent.name / video.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(video)
    print(f"{out}: {len(chosen) - sum(in_test)} train, {sum(in_test)} test videos, split by {split}")


def score(out: Path, audit_json: Path) -> None:
    found = json.loads(audit_json.read_text())
    videos = found["videos"]
    train_groups = {group_of(v["path"]) for v in videos if v["split"] == "train"}
    test = [i for i, v in enumerate(videos) if v["split"] == "test"]
    with_sibling = {i for i in test if group_of(videos[i]["path"]) in train_groups}
    flagged: dict[int, list[tuple[int, str]]] = {}
    for pair in found["pairs"]:
        a, b = pair["a"], pair["b"]
        if {videos[a]["split"], videos[b]["split"]} == {"test", "train"}:
            held, other = (a, b) if videos[a]["split"] == "test" else (b, a)
            flagged.setdefault(held, []).append((other, pair["kind"]))
    pairs = [(held, other, kind) for held, others in flagged.items() for other, kind in others]
    true = [p for p in pairs if group_of(videos[p[0]]["path"]) == group_of(videos[p[1]]["path"])]
    hit = with_sibling & set(flagged)
    print(f"test videos: {len(test)}; with a same-group clip in train: {len(with_sibling)}; of those flagged: "
          f"{len(hit)} ({len(hit) / max(1, len(with_sibling)):.1%})")
    print(f"test videos flagged: {len(flagged)} ({len(flagged) / max(1, len(test)):.1%}); flagged pairs truly same-group: "
          f"{len(true)}/{len(pairs)} ({len(true) / max(1, len(pairs)):.1%}); by kind: "
          + ", ".join(f"{kind} {sum(p[2] == kind for p in pairs)}" for kind in ("copy", "recording")))
    for held, other, kind in sorted(set(pairs) - set(true)):
        print(f"  not same group ({kind}): {Path(videos[held]['path']).name} ~ {Path(videos[other]['path']).name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("layout")
    make.add_argument("src", type=Path)
    make.add_argument("out", type=Path)
    make.add_argument("--split", choices=["clip", "group"], required=True)
    make.add_argument("--per-class", type=int, default=40)
    make.add_argument("--groups", default="8-25", help="first-last group kept (UCF101's 1-7 are kept out of tuning)")
    make.add_argument("--seed", type=int, default=1)
    rate = commands.add_parser("score")
    rate.add_argument("out", type=Path)
    rate.add_argument("audit_json", type=Path)
    args = parser.parse_args()
    if args.command == "layout":
        first, last = map(int, args.groups.split("-"))
        layout(args.src, args.out, args.split, args.per_class, range(first, last + 1), args.seed)
    else:
        score(args.out, args.audit_json)


if __name__ == "__main__":
    main()
