"""Frames and size for I3D on a CPU: what a clip costs and what the pretrained model keeps.

    python benchmarks/i3d_settings.py CRICKET_GIF [--settings 64x224 32x160 16x160 16x112 8x112]

For each setting (frames x crop; the short side in DeepMind's 256:224 proportion): DeepMind's cricket
clip (github.com/deepmind/kinetics-i3d, data/v_CricketShot_g04_c01_rgb.gif) classified by the
Kinetics-400 model (top-1 and its probability: what the setting keeps of the pretrained accuracy,
on one real clip), and the CPU seconds (process time, all threads: less sensitive to a shared
machine than wall time) and wall milliseconds of one forward and of one training step (forward +
backward, batch 2) per clip (the step not timed at 64 x 224), with the load average when each row
was measured. Prints a Markdown table (benchmarks/transfer.md).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import torch

from vidcls.models.loading import load_model
from vidcls.inference.prediction import VideoClassifier
from vidcls.models.pretrained import I3D_KINETICS400
from vidcls.inference.options import ViewOptions


def cpu_seconds(step, repeats: int = 1) -> tuple[float, float]:
    """CPU seconds and wall seconds of ``step`` (the run with least CPU of ``repeats``, after one warm-up run)."""
    step()
    times = []
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        step()
        times.append((time.process_time() - cpu, time.perf_counter() - wall))
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gif")
    parser.add_argument("--settings", nargs="+", default=["64x224", "32x160", "16x160", "16x112", "8x112"])
    parser.add_argument("--repeats", type=int, default=1, help="timed runs after the warm-up (the least CPU kept)")
    args = parser.parse_args()
    loaded = load_model(I3D_KINETICS400)
    model = loaded.model
    print("| frames x crop | cricket top-1 | p | forward, CPU s / clip (wall ms) | training step, CPU s / clip (wall ms) | load |")
    print("|---|---|---|---|---|---|")
    for setting in args.settings:
        frames, crop = map(int, setting.split("x"))
        loaded.spec = replace(loaded.spec, num_frames=frames, crop_size=crop, resize_short_side=round(crop * 256 / 224))
        top = VideoClassifier(loaded).predict(args.gif, ViewOptions(clips=1, top_k=1)).top_k[0]
        pixels = torch.randn(2, frames, 3, crop, crop)
        model.eval()
        with torch.inference_mode():
            forward_cpu, forward_wall = cpu_seconds(lambda: model(pixel_values=pixels[:1]), args.repeats)
        model.train()

        def train_step() -> None:
            model.zero_grad(set_to_none=True)
            model(pixel_values=pixels, labels=torch.tensor([0, 1])).loss.backward()

        # DeepMind's 64 x 224 is the prediction setting, too costly to train on a CPU: not timed.
        step = "not timed"
        if frames * crop**2 <= 32 * 160**2:
            step_cpu, step_wall = cpu_seconds(train_step, args.repeats)
            step = f"{step_cpu / 2:.2f} ({step_wall / 2 * 1000:.0f})"
        print(f"| {frames} x {crop} | {top['label']} | {top['score']:.3f} | {forward_cpu:.2f} ({forward_wall * 1000:.0f}) | "
              f"{step} | {os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
