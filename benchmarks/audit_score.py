"""Score `vidcls audit` against what `audit_plant.py` planted, and time it; figures go to benchmarks/audit.md.

Usage:
    python benchmarks/audit_score.py DATA [--label-issues [--fold-recipe motion]] [--cache DIR]

Copies (DATA/planted.json): recall = planted pairs among the listed cross-split pairs; false =
listed cross-split pairs that were not planted, as a share of those listed. The same pairs are
also searched through the usearch index (as past `INDEX_THRESHOLD` videos) to check it finds
them too. Flips (DATA/flipped.json): the share of flipped videos among the top 2 x (number
flipped) suspects.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from vidcls.audit.core import run_audit
from vidcls.audit.leakage import thumbnail_signatures
from vidcls.audit.duplicates import find_duplicates
from vidcls.data.discovery import discover_dataset


def score_copies(root: Path, result, cache: Path | None) -> None:
    planted = {frozenset((str(root / a), str(root / b))) for a, b in json.loads((root / "planted.json").read_text())}
    listed = [frozenset((result.videos[p["a"]]["path"], result.videos[p["b"]]["path"])) for p in result.pairs if p["cross_split"]]
    found = planted & set(listed)
    false = [pair for pair in listed if pair not in planted]
    print(f"copies: {len(found)}/{len(planted)} planted pairs listed ({len(found) / len(planted):.1%}); "
          f"{len(false)}/{len(listed)} listed cross-split pairs false ({len(false) / max(1, len(listed)):.1%})")
    distances = sorted(p["distance"] for p in result.pairs if frozenset((result.videos[p["a"]]["path"], result.videos[p["b"]]["path"])) in planted)
    print(f"planted pair distances: max {max(distances, default=float('nan')):.2f}")
    records = [r for records in discover_dataset(root).splits.values() for r in records]
    signatures, _ = thumbnail_signatures(records, cache)
    started = time.perf_counter()
    indexed = find_duplicates([signatures[r.path] for r in records], index_threshold=0)
    pairs = {frozenset((str(records[p.a].path), str(records[p.b].path))) for p in indexed}
    print(f"through the usearch index: {len(planted & pairs)}/{len(planted)} planted pairs, {len(pairs)} pairs listed, "
          f"{time.perf_counter() - started:.1f} s")


def score_flips(root: Path, result) -> None:
    flipped = {str(root / f["path"]) for f in json.loads((root / "flipped.json").read_text())}
    suspects = [result.videos[i["index"]]["path"] for i in result.label_issues]
    top = suspects[: 2 * len(flipped)]
    hits = flipped & set(top)
    print(f"label issues: {len(hits)}/{len(flipped)} flipped videos in the top {len(top)} suspects "
          f"({len(hits) / len(flipped):.1%}); {len(suspects)} suspects listed; {result.label_method}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--label-issues", action="store_true")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--fold-recipe", default="signature", choices=["signature", "motion"])
    args = parser.parse_args()
    started = time.perf_counter()
    result = run_audit(args.data, label_issues=args.label_issues, recipe=args.fold_recipe, cache_dir=args.cache)
    print(f"{len(result.videos)} videos, {time.perf_counter() - started:.1f} s in all; stages (s): "
          + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()))
    if (args.data / "planted.json").is_file():
        score_copies(args.data, result, args.cache)
    if args.label_issues and (args.data / "flipped.json").is_file():
        score_flips(args.data, result)


if __name__ == "__main__":
    main()
