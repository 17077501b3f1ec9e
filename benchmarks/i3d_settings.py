"""Frames and size for I3D on a CPU: what a clip costs and what the pretrained model keeps.

    python benchmarks/i3d_settings.py CRICKET_GIF [--settings 64x224 32x160 16x160 16x112 8x112]

For each setting (frames x crop; the short side in DeepMind's 256:224 proportion): DeepMind's cricket
clip (github.com/deepmind/kinetics-i3d, data/v_CricketShot_g04_c01_rgb.gif) classified by the
Kinetics-400 model (top-1 and its probability: what the setting keeps of the pretrained accuracy,
on one real clip), and the CPU seconds (process time, all threads: less sensitive to a shared
machine than wall time) of one forward and of one training step (forward + backward, batch 2) per
clip (not timed at 64 x 224). Prints a Markdown table (benchmarks/transfer.md).
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


def cpu_seconds(step, repeats: int = 1) -> float:
    """CPU seconds of ``step`` (best of ``repeats`` after one warm-up run)."""
    step()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        step()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gif")
    parser.add_argument("--settings", nargs="+", default=["64x224", "32x160", "16x160", "16x112", "8x112"])
    args = parser.parse_args()
    loaded = load_model(I3D_KINETICS400)
    model = loaded.model
    print("| frames x crop | cricket top-1 | p | forward, CPU s / clip | training step, CPU s / clip | load |")
    print("|---|---|---|---|---|---|")
    for setting in args.settings:
        frames, crop = map(int, setting.split("x"))
        loaded.spec = replace(loaded.spec, num_frames=frames, crop_size=crop, resize_short_side=round(crop * 256 / 224))
        top = VideoClassifier(loaded).predict(args.gif, ViewOptions(clips=1, top_k=1)).top_k[0]
        pixels = torch.randn(2, frames, 3, crop, crop)
        model.eval()
        with torch.inference_mode():
            forward = cpu_seconds(lambda: model(pixel_values=pixels[:1]))
        model.train()

        def train_step() -> None:
            model.zero_grad(set_to_none=True)
            model(pixel_values=pixels, labels=torch.tensor([0, 1])).loss.backward()

        # DeepMind's 64 x 224 is the prediction setting, too costly to train on a CPU: not timed.
        step = f"{cpu_seconds(train_step) / 2:.2f}" if frames * crop**2 <= 32 * 160**2 else "not timed"
        print(f"| {frames} x {crop} | {top['label']} | {top['score']:.3f} | {forward:.2f} | {step} | "
              f"{os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
