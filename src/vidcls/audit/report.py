"""Write an audit as a Markdown report a person reads, with frame strips, plus the same data as JSON.

Each listed pair (a copy, or two clips of one recording) is one PNG with the two videos' frames
side by side (one row each, captioned with path, split and label); each suspect video one row with its label and the
suggested one. `report.json` is `AuditResult.as_dict()`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vidcls.audit.core import AuditResult
from vidcls.errors import VideoReadError
from vidcls.publish.markdown import markdown_table

STRIP_FRAMES = 6  # frames per video, spread over its length
STRIP_HEIGHT = 96
CAPTION = 18  # pixels of caption above each row
GAP = 3  # white pixels between frames
SHOWN = 20  # pairs and suspects given a strip; the JSON holds them all


def video_row(path: str, caption: str) -> Image.Image:
    """A captioned row of `STRIP_FRAMES` frames spread over the video (grey when it cannot be read)."""
    from vidcls.data.probe import read_video

    spread = lambda info: np.linspace(0, info.num_frames - 1, STRIP_FRAMES).round().astype(int).tolist()  # noqa: E731
    try:
        _, frames = read_video(path, spread, resize=STRIP_HEIGHT)
        gap = np.full((frames.shape[1], GAP, 3), 255, np.uint8)
        row = np.concatenate([part for frame in frames for part in (frame, gap)][:-1], axis=1)
    except VideoReadError as error:
        row, caption = np.full((STRIP_HEIGHT, STRIP_HEIGHT * STRIP_FRAMES, 3), 128, np.uint8), f"{caption} ({error.reason})"
    canvas = Image.new("RGB", (row.shape[1], row.shape[0] + CAPTION), "white")
    canvas.paste(Image.fromarray(row), (0, CAPTION))
    ImageDraw.Draw(canvas).text((4, 3), caption, fill="black")
    return canvas


def stack_rows(rows: list[Image.Image]) -> Image.Image:
    """Rows one under the other, left aligned, on white."""
    canvas = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    top = 0
    for row in rows:
        canvas.paste(row, (0, top))
        top += row.height
    return canvas


SPLIT_ORDER = {"test": 0, "val": 1, "train": 2}


def held_out_first(pair: dict, videos: list[dict]) -> tuple[dict, dict]:
    """The pair's two videos, the one of the more held-out split (test, then val) first."""
    a, b = videos[pair["a"]], videos[pair["b"]]
    return (b, a) if SPLIT_ORDER.get(b["split"], 3) < SPLIT_ORDER.get(a["split"], 3) else (a, b)


def listed_pairs(result: AuditResult) -> list[dict]:
    """Pairs in display order: across splits first, copies before shared recordings, then by
    distance (the evidence: for recordings, the ratio to the neighbourhood's distance)."""
    return sorted(result.pairs, key=lambda p: (not p["cross_split"], p["kind"] != "copy", p["distance"]))


def match_kind(pair: dict) -> str:
    """How a pair matched, in a few words."""
    if pair["kind"] == "recording":
        return f"same recording ({pair['distance']:.2f})"
    return "exact copy" if pair["exact"] else f"near copy ({pair['distance']:.2f})"


def clean_line(result: AuditResult) -> str:
    """What a headline without findings means: recordings are named only where they were checked."""
    checked = not result.recordings_method.startswith("not checked")
    return f"No held-out video has an exact or near copy{', or a clip of its recording,' if checked else ''} in another split."


def relative(path: str, root: str) -> str:
    """An audited path as shown: relative to the dataset folder, which holds every audited video."""
    return Path(path).relative_to(root).as_posix()


def _caption(video: dict, root: str) -> str:
    return f"{video['split']} / {video['label']}: {relative(video['path'], root)}"


def write_audit_report(result: AuditResult, out_dir: str | Path) -> dict[str, Path]:
    """Write report.md, report.json and the strips (pairs/, suspects/) into ``out_dir``; returns the main paths."""
    out = Path(out_dir)
    for folder in ("pairs", "suspects"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    videos, root = result.videos, result.root
    pairs = listed_pairs(result)[:SHOWN]
    for number, pair in enumerate(pairs, start=1):
        rows = [video_row(video["path"], _caption(video, root)) for video in held_out_first(pair, videos)]
        stack_rows(rows).save(out / "pairs" / f"pair_{number:03d}.png")
    for number, issue in enumerate((result.label_issues or [])[:SHOWN], start=1):
        video = videos[issue["index"]]
        caption = f"{_caption(video, root)}  ->  suggested {issue['suggested']} (quality {issue['quality']:.2f})"
        video_row(video["path"], caption).save(out / "suspects" / f"suspect_{number:03d}.png")
    paths = {"markdown": out / "report.md", "json": out / "report.json"}
    paths["json"].write_text(json.dumps(result.as_dict(), indent=2))
    paths["markdown"].write_text(render_markdown(result, pairs))
    return paths


def render_markdown(result: AuditResult, shown_pairs: list[dict]) -> str:
    """The whole report as Markdown text; ``shown_pairs`` are the pairs that got a strip, in its order."""
    sections = [
        f"# Dataset audit: {result.root}\n\n{result.layout} layout, split from {result.split_source}, "
        f"{len(result.videos)} videos, {len(result.labels)} classes; near-duplicates compared on {result.signature}; "
        f"shared recordings: {result.recordings_method}.",
        _headline(result), _pairs(result, shown_pairs), _label_issues(result), _counts(result), _outliers(result),
        _failed(result),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def _headline(result: AuditResult) -> str:
    if not result.headline:
        return f"## Leakage\n\n{clean_line(result)}"
    lines = "\n".join(f"- **{line}**" for line in result.headline)
    return (f"## Leakage\n\n{lines}\n\nScores on those videos measure memory, not generalisation: remove or move "
            "the copies, and keep the clips of one recording in one split.")


def _pairs(result: AuditResult, shown: list[dict]) -> str:
    cross = sum(p["cross_split"] for p in result.pairs)
    head = f"## Pairs: copies and shared recordings ({len(result.pairs)}, {cross} across splits)"
    if not result.pairs:
        return f"{head}\n\nNone."
    rows = []
    for number, pair in enumerate(shown, start=1):
        a, b = held_out_first(pair, result.videos)
        rows.append((str(number), match_kind(pair), _caption(a, result.root), _caption(b, result.root), f"![pair {number}](pairs/pair_{number:03d}.png)"))
    more = f"\n\nThe first {len(shown)}, cross-split first; report.json lists all." if len(result.pairs) > len(shown) else ""
    legend = ("Copies: mean grey-level difference of matched frames (0 = same pixels). Same recording: the larger of the pair's "
              "two distances (ImageNet frame features, thumbnails) over the videos' other near neighbours', each over its "
              "threshold (lower is surer).")
    return f"{head}\n\n{legend}\n\n" + markdown_table(("#", "match", "held-out video", "other", "frames"), rows) + more


def _label_issues(result: AuditResult) -> str:
    if result.label_issues is None:
        return "## Label issues\n\nNot checked: pass `--label-issues`."
    head = f"## Likely mislabelled videos ({len(result.label_issues)})\n\nEvidence: {result.label_method}; ranked by cleanlab's label quality (lowest first)."
    if not result.label_issues:
        return f"{head}\n\nNone found."
    rows = [
        (str(n), _caption(result.videos[i["index"]], result.root), i["suggested"], f"{i['quality']:.3f}",
         f"![suspect {n}](suspects/suspect_{n:03d}.png)" if n <= SHOWN else "")
        for n, i in enumerate(result.label_issues, start=1)
    ]
    return f"{head}\n\n" + markdown_table(("#", "video", "suggested label", "label quality", "frames"), rows)


def _counts(result: AuditResult) -> str:
    splits = list(result.counts)
    rows = [(label, *(str(result.counts[s][label]) for s in splits)) for label in result.labels]
    warning = "".join(
        f"\n\n**{split} is imbalanced**: its largest class has {ratio:.1f}x the videos of its smallest."
        for split, ratio in result.imbalance.items()
    )
    return "## Videos per class and split\n\n" + markdown_table(("class", *splits), rows) + warning


def _outliers(result: AuditResult) -> str:
    if not result.outliers:
        return "## Outliers\n\nNo video's duration, frame rate, size or brightness lies far from its class."
    rows = [
        (_caption(result.videos[o["index"]], result.root), o["measure"], f"{o['value']:.4g}", f"{o['class_median']:.4g}", f"{o['z']:+.1f}")
        for o in result.outliers
    ]
    return f"## Outliers ({len(result.outliers)})\n\nFar from the class median in robust deviations (z).\n\n" + markdown_table(
        ("video", "measure", "value", "class median", "z"), rows)


def _failed(result: AuditResult) -> str:
    if not result.failed:
        return ""
    rows = [(f["path"], f["reason"]) for f in result.failed]
    return f"## Files left out ({len(result.failed)})\n\n" + markdown_table(("file", "reason"), rows)
