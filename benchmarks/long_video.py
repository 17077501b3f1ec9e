"""Peak memory of `vidcls predict --window` against video length: it should stay flat.

    PYTHONPATH=src .venv/bin/python benchmarks/long_video.py --minutes 1 10 30 --window 1

Writes a small (64x64, 25 fps, MPEG-4) video of each length with PyAV and an untrained `motion`
model, then runs `predict` with ``--window`` on each video in a fresh process, once per length,
and prints JSON: per length, the peak RSS (MB) of that process, the windows scored and the
seconds taken, plus the load average. Windows are decoded and scored a batch at a time and only
their scores kept (`data.views.window_views`), so a 30-minute video should peak within 10% of a
1-minute one. `--no-window` measures the whole-video prediction alone for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

FPS = 25
SIZE = 64

# Runs in a child process so each length's peak RSS is its own.
_CHILD = """
import json, resource, sys, time
from vidcls.inference.options import ViewOptions
from vidcls.inference.prediction import predict
started = time.perf_counter()
window = float(sys.argv[3]) or None
(result,) = predict(sys.argv[1], [sys.argv[2]], ViewOptions(window=window), device="cpu")
assert "error" not in result, result
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "windows": len(result["windows"]), "seconds": time.perf_counter() - started}))
"""


def write_long_video(path: Path, minutes: float) -> Path:
    """A square sweeping left and right over a grey background, ``minutes`` long."""
    frames = int(minutes * 60 * FPS)
    x = np.arange(SIZE)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width = stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        for t in range(frames):
            image = np.full((SIZE, SIZE, 3), 60, np.uint8)
            left = abs((t * 2) % (2 * (SIZE - 16)) - (SIZE - 16))
            image[24:40, (x >= left) & (x < left + 16)] = 220
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def save_untrained_model(out_dir: Path) -> Path:
    """The `motion` preset for two labels, saved as `vidcls train` saves a model (weights do not matter here)."""
    from vidcls.models.loading import create_model
    from vidcls.models.saving import save_model

    save_model(create_model("motion", ["left", "right"]), out_dir)
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 30])
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument("--no-window", action="store_true", help="whole-video prediction only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = save_untrained_model(Path(folder) / "model")
        results = {}
        for minutes in args.minutes:
            video = write_long_video(Path(folder) / f"{minutes:g}min.mp4", minutes)
            window = "0" if args.no_window else str(args.window)
            child = subprocess.run(
                [sys.executable, "-c", _CHILD, str(model), str(video), window],
                capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            results[f"{minutes:g} min"] = json.loads(child.stdout.strip().splitlines()[-1])
            video.unlink()
    print(json.dumps({"window_s": None if args.no_window else args.window, "size": f"{SIZE}x{SIZE}", "fps": FPS,
                      "results": results, "loadavg": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
