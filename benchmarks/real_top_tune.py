"""Fine-tuning I3D's top blocks on cached lower-layer output, against the linear head alone (benchmarks/real.md).

    python benchmarks/real_top_tune.py CACHE DATA [--frames 16] [--size 160] [--epochs 6]

Each video of DATA (a split layout) is read as benchmarks/real_features.py reads it (N frames
spread over the video, short side S, no crop), run through the frozen Kinetics-400 I3D up to
MaxPool3d_5a once, plain and mirrored, and that output cached (float16, under CACHE). Then
Mixed_5b, Mixed_5c and a new linear head (batch norm on its pretrained statistics) are trained on
the cached maps of the training videos, each step taking a video plain or mirrored at random,
and scored after every epoch on val and test (plain and mirrored averaged). Baseline: scikit-learn's
logistic regression on the same frozen pooled features (L2-normalised, C chosen on val). Prints
the baseline, each epoch's val and test top-1 and seconds, and the cost of the cached maps.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from real_features import C_GRID, SPLITS, fit_head, l2, read_frames, split_videos
from vidcls.models.loading import load_model
from vidcls.models.pretrained import I3D_KINETICS400, pretrained_model_dir

TOP = ("Mixed_5b", "Mixed_5c")


def lower_output(backbone: torch.nn.ModuleDict, clip: torch.Tensor) -> torch.Tensor:
    """The frozen blocks' output (channels, T', H', W') for a uint8 (N, 3, H, W) clip."""
    x = (clip.float() / 127.5 - 1.0).transpose(0, 1)[None]
    for name, layer in backbone.items():
        if name in TOP:
            break
        x = layer(x)
    return x[0]


def cached_maps(cache: Path, backbone, videos: list[Path], frames: int, size: str) -> tuple[torch.Tensor, float]:
    """(videos, 2, C, T', H', W') float16 maps (plain, mirrored), and the seconds a missing video took on average."""
    maps, seconds = [], []
    for video in videos:
        key = hashlib.sha1(f"{video.resolve()}|{frames}|{size}".encode()).hexdigest()[:16]
        file = cache / f"{key}.pt"
        if not file.is_file():
            started = time.perf_counter()
            with torch.inference_mode():
                clip = read_frames(video, frames, size)
                pair = torch.stack([lower_output(backbone, clip), lower_output(backbone, clip.flip(-1))]).half()
            torch.save(pair, file)
            seconds.append(time.perf_counter() - started)
        maps.append(torch.load(file))
    return torch.stack(maps), float(np.mean(seconds)) if seconds else float("nan")


class Top(torch.nn.Module):
    """Mixed_5b, Mixed_5c, I3D's pooling, dropout and a linear head."""

    def __init__(self, backbone, classes: int) -> None:
        super().__init__()
        self.blocks = torch.nn.Sequential(*[copy.deepcopy(backbone[name]) for name in TOP])
        self.dropout = torch.nn.Dropout(0.5)
        self.head = torch.nn.Linear(1024, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(x).mean(dim=(3, 4))
        if x.shape[2] > 1:
            x = F.avg_pool1d(x, kernel_size=2, stride=1)
        return self.head(self.dropout(x.mean(dim=2)))


def top1(model: Top, maps: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 of plain and mirrored logits' mean."""
    model.eval()
    with torch.inference_mode():
        logits = torch.stack([model(maps[i].float()).mean(0) for i in range(len(maps))])
    return float((logits.argmax(1) == labels).float().mean())


def train(model: Top, data: dict, epochs: int, lr: float, batch: int) -> None:
    groups = [
        {"params": model.blocks.parameters(), "lr": lr},
        {"params": model.head.parameters(), "lr": lr * 10},
    ]
    optimizer = torch.optim.AdamW(groups, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    maps, labels = data["train"]
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        model.train()
        model.blocks.apply(lambda m: m.eval() if isinstance(m, torch.nn.BatchNorm3d) else None)
        order = rng.permutation(len(labels))
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            views = rng.integers(0, 2, len(rows))
            x = torch.stack([maps[r, v].float() for r, v in zip(rows, views)])
            loss = F.cross_entropy(model(x), labels[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - started
        scores = {split: top1(model, *data[split]) for split in ("val", "test")}
        print(f"| epoch {epoch} | loss {loss.item():.3f} | val {scores['val']:.3f} | test {scores['test']:.3f} | "
              f"{seconds:.0f} s | load {os.getloadavg()[0]:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", default="160")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    backbone = load_model(str(pretrained_model_dir(I3D_KINETICS400))).model.eval().backbone
    maps_dir = args.cache / f"maps-n{args.frames}-s{args.size}"
    maps_dir.mkdir(parents=True, exist_ok=True)
    splits = split_videos(args.data)
    classes = sorted(set(splits["train"][1]))
    data, frozen = {}, {}
    for split in SPLITS:
        videos, names = splits[split]
        maps, seconds = cached_maps(maps_dir, backbone, videos, args.frames, args.size)
        labels = torch.tensor([classes.index(n) for n in names])
        data[split] = (maps, labels)
        print(f"{split}: {len(videos)} videos, maps {tuple(maps.shape[2:])}, {seconds:.2f} s a missing video", flush=True)
        top = Top(backbone, len(classes)).eval()
        with torch.inference_mode():
            pooled = torch.stack([
                torch.stack([top.blocks(maps[i, v : v + 1].float()).mean(dim=(3, 4)) for v in range(2)]).mean(0)[0]
                for i in range(len(maps))
            ])
        frozen[split] = l2(F.avg_pool1d(pooled, 2, 1).mean(-1).numpy().astype(np.float64))
    baseline = fit_head(frozen, {s: np.array(splits[s][1]) for s in SPLITS}, C_GRID)
    print(f"| head alone (logistic regression, flip-averaged) | C={baseline['C']:g} | val {baseline['val']:.3f} | "
          f"test {baseline['test']:.3f} | {baseline['fit_s']:.1f} s |", flush=True)
    train(Top(backbone, len(classes)), data, args.epochs, args.lr, args.batch)


if __name__ == "__main__":
    main()
