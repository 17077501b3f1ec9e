"""Does a trained model give a quirky copy of a test video the label it gives the video itself?

    .venv/bin/vidcls sample bench/quirks/data --per-class 12 --format mp4
    .venv/bin/vidcls train bench/quirks/data -o bench/quirks/m --no-flip --epochs 40 --batch-size 4
    .venv/bin/python benchmarks/quirk_predictions.py bench/quirks/m bench/quirks/data/test bench/quirks/copies

For every test video B this writes, with the ffmpeg CLI, the copies users bring:
- ``trim``: two other test videos then B, encoded as one H.264 file with a single keyframe, cut
  to B with ``ffmpeg -ss T -i full.mp4 -c copy`` (what quick cutters do): B's frames behind an
  edit list that hides the other videos' frames, which stay in the file as pre-roll;
- ``ps``: B re-encoded as MPEG-2 in an MPEG program stream (``.mpg``, a GOP every 12 frames);
- ``vfr``: B with every fifth frame dropped, timestamps kept (variable frame rate, ``.mkv``).
Then it runs `vidcls.predict` (``--clips`` 1 and 4) on the videos and their copies and prints
JSON: per clips and kind, how many of the videos get the true label and how many get the label
their untouched source gets. Figures in benchmarks/player_view.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from vidcls.inference.options import ViewOptions
from vidcls.inference.prediction import predict


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def _frames(path: Path) -> int:
    shown = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=nb_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )
    return int(shown.stdout.strip())


def write_copies(videos: list[Path], out: Path) -> list[Path]:
    """Each video as ``<stem>.src.mp4`` and its trim, ps and vfr copies (see the module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, video in enumerate(videos):
        before = videos[(i + len(videos) // 4) % len(videos)]
        full, stem = out / "full.mp4", video.stem
        _ffmpeg("-i", str(before), "-i", str(before), "-i", str(video), "-filter_complex",
                "[0:v][1:v][2:v]concat=n=3:v=1[v]", "-map", "[v]", "-c:v", "libx264", "-g", "1000",
                "-sc_threshold", "0", "-bf", "2", "-crf", "16", str(full))
        _ffmpeg("-ss", str(2 * _frames(before) / 25), "-i", str(full), "-c", "copy", str(out / f"{stem}.trim.mp4"))
        full.unlink()
        _ffmpeg("-i", str(video), "-c:v", "mpeg2video", "-q:v", "2", "-g", "12", "-bf", "2", "-f", "vob",
                str(out / f"{stem}.ps.mpg"))
        _ffmpeg("-i", str(video), "-vf", r"select=mod(n\,5)-2", "-fps_mode", "vfr", "-c:v", "libx264", "-crf", "12",
                str(out / f"{stem}.vfr.mkv"))
        shutil.copy(video, out / f"{stem}.src.mp4")
        written += [out / f"{stem}.{kind}" for kind in ("src.mp4", "trim.mp4", "ps.mpg", "vfr.mkv")]
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("test_folder", type=Path, help="<Class>/<video> folders")
    parser.add_argument("out", type=Path, help="where the copies are written")
    args = parser.parse_args()
    videos = sorted(args.test_folder.glob("*/*.mp4"))
    files = write_copies(videos, args.out)
    truth = {video.stem: video.parent.name for video in videos}
    counts: Counter = Counter()
    for clips in (1, 4):
        labels = {}
        for result in predict(args.model, files, ViewOptions(clips=clips, top_k=1), device="cpu"):
            stem, kind = Path(result["path"]).name.split(".")[:2]
            labels[stem, kind] = result["top_k"][0]["label"] if "top_k" in result else f"error: {result['error']}"
        for (stem, kind), label in labels.items():
            counts[f"clips {clips} {kind} true label"] += label == truth[stem]
            counts[f"clips {clips} {kind} as source"] += label == labels[stem, "src"]
    print(json.dumps({"videos": len(videos), **dict(sorted(counts.items()))}, indent=1))


if __name__ == "__main__":
    main()
