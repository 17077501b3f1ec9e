"""What `vidcls audit`'s duplicate search costs at 100,000 videos, measured on its parts.

Usage:
    python benchmarks/audit_scale.py --videos 100000

Signatures are per file (decoding), so their cost is linear and measured on a real folder by
`audit_score.py`. Here: the usearch index over N mean descriptors (random vectors of the real
size: only its build and search cost matters), and the exact scoring of one candidate pair
(two random signatures of the real shape), times the candidate pairs N videos propose.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from vidcls.audit.duplicates import CANDIDATES, candidate_pairs, frame_set_distance
from vidcls.audit.signatures import CHROMA_BLOCK, CROP_BORDERS, LUMA_BLOCK, MAX_SAMPLES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    dims = LUMA_BLOCK**2 + 2 * CHROMA_BLOCK**2
    summaries = rng.normal(size=(args.videos, dims)).astype(np.float32)
    started = time.perf_counter()
    pairs = candidate_pairs(summaries, threshold=0)
    search = time.perf_counter() - started
    a = rng.normal(size=(len(CROP_BORDERS), MAX_SAMPLES, dims)).astype(np.float32)
    b = rng.normal(size=a.shape).astype(np.float32)
    started = time.perf_counter()
    repeats = 2000
    for _ in range(repeats):
        frame_set_distance(a, b)
    per_pair = (time.perf_counter() - started) / repeats
    print(f"{args.videos} videos: usearch index build + {CANDIDATES}-NN search {search:.1f} s, {len(pairs)} candidate pairs; "
          f"{per_pair * 1e3:.2f} ms per pair scored ({MAX_SAMPLES} samples): {len(pairs) * per_pair:.0f} s to score them; "
          f"signatures held in memory: {args.videos * a.nbytes / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
