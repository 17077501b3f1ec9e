"""min / median / max of the prediction figures over several `vidcls benchmark --json` files, as Markdown.

    python benchmarks/summarize_runs.py run-1.json run-2.json ...

Why: one run on a shared machine moves with the other jobs; the README records the spread of
five. The load average (1 min) before and after each run is summarised the same way.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def _spread(values: list[float], digits: int = 2) -> str:
    return " / ".join(f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values)))


def summarize(results: list[dict]) -> str:
    """A Markdown table: one line per prediction way and figure, then the targets and the load."""
    lines = [f"| figure ({len(results)} runs) | min / median / max |", "|---|---|"]
    for way in results[0]["prediction"]:
        rows = [r["prediction"][way] for r in results]
        lines.append(f"| {way} ms/video | {_spread([row['ms_per_video'] for row in rows])} |")
        lines.append(f"| {way} CPU ms/video | {_spread([row['cpu_ms_per_video'] for row in rows])} |")
        if way != "pipeline":
            lines.append(f"| pipeline / {way} | {_spread([row['speedup_vs_pipeline'] for row in rows])}x |")
            lines.append(f"| {way} top-1 agreement | {_spread([row['top1_agree'] for row in rows], 3)} |")
    for name in results[0]["targets"]:
        passed = sum(r["targets"][name]["pass"] for r in results)
        lines.append(f"| target {name} {results[0]['targets'][name]['target']} | passed in {passed} of {len(results)} |")
    loads = [r["load_average"][when][0] for r in results for when in ("before", "after")]
    lines.append(f"| load average (1 min), before and after | {_spread(loads, 1)} |")
    settings = results[0]["settings"]
    lines.append(f"| torch threads, predict batch | {settings['torch_threads']}, {settings['predict_batch_size']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="JSON files written by `vidcls benchmark --json`")
    args = parser.parse_args()
    print(summarize([json.loads(path.read_text()) for path in args.results]))


if __name__ == "__main__":
    main()
