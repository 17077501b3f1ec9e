"""Measure how fast vidcls feeds and runs a model, side by side on the same files, in one run.

Four figures, each against the baseline it is meant to beat (measured figures: benchmarks/README.md):

- ``loader_clips_per_s``: the training loader at the guide's settings (16 frames every 4th,
  random 224 crop, flip, batch 8; the short side is drawn from vidcls's ``TRAIN_SCALE_RANGE``,
  224-280, where the guide draws 256-320), built by `training.loop.build_loaders` with vidcls' default
  workers, counted as the training step receives batches once warm (`loader_warmup_batches`),
  over `LOADER_BATCHES_FACTOR` x ``batches`` (about 8 s: shorter, the rate moved by 20% between runs). The target is 100. The guide's own
  pytorchvideo loader no longer imports with today's torchvision, so it is not run beside it and
  no ratio against it is printed.
- ``train_clips_per_s`` / ``data_wait_fraction``: `training.loop.train_one_epoch` on the chosen model
  fed by its own loader; the step should wait for data less than 10% of the time.
- ``predict_ms_per_video`` vs ``pipeline_ms_per_video``: `vidcls predict` (`predict_files`: each
  file opened once, decoded in threads while batches of videos go through the model) and
  ``transformers.pipeline("video-classification")`` (one file per call, as the guide calls it)
  on the same saved model, the same files and the pipeline's frames (one segment clip), with
  ``top1_agree`` the share of videos on which their top-1 labels agree. Beside them, the same
  prediction on the model's ONNX export (onnxruntime) and one file per `VideoClassifier.predict`
  call; the targets are 3x the pipeline's speed, 4x on onnxruntime.
- ``eval_s_per_video`` / ``predict_default_ms_per_video`` (``measure`` "eval", off by default):
  `vidcls eval` of the data's test split and `vidcls predict` of the same files, both at the
  model's default views, as a user runs them on a trained model folder; the target is 1 s a video
  (180 test videos in 3 minutes). A model folder is read where it is, never written to.

``measure`` picks among `MEASUREMENTS` (default `DEFAULT_MEASUREMENTS`): a real-data model is
benchmarked on "predict" and "eval" alone, where training it for the loader's figures would take long.

Warm-up batches (worker start-up, first allocations) are run and not counted. Memory is the peak
over the main process and the loader processes of summed RSS and of summed PSS (`_PeakRss`). A warm-up
epoch is avoided instead of skipped: the files are repeated so one epoch holds every batch.
Timing thresholds live here (``targets`` in the result), never in unit tests. The machine may
be shared, so the load average and CPU time per clip are reported beside the wall-clock rates.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import logging
import math
import os
import platform
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterable

import numpy as np
import psutil
import torch

from vidcls.errors import ModelError
from vidcls.inference.forward import pick_device
from vidcls.data.discovery import DatasetIndex, VideoRecord, discover_dataset
from vidcls.models.loading import create_model, spec_as_dict
from vidcls.models.saving import LoadedModel, save_model
from vidcls.defaults import PREDICT_BATCH_SIZE
from vidcls.inference.prediction import VideoClassifier
from vidcls.data.datasets import default_workers
from vidcls.training.schedule import Schedule
from vidcls.training.config import NEW_WEIGHTS_LR, TrainConfig
from vidcls.training.loop import build_loaders, train_one_epoch
from vidcls.data.clip_spec import ClipSpec
from vidcls.inference.options import ViewOptions

logger = logging.getLogger(__name__)

# The guide's training input: pytorchvideo Ucf101 clips of 16 frames at rate 4, 224 crop.
GUIDE_SPEC = ClipSpec(sampling="dense")  # the guide's clips: 16 frames every 4th, 224 px
GUIDE_BATCH_SIZE = 8

TARGET_LOADER_CLIPS_PER_S = 100.0
# The loader's peak memory, all its processes: PSS, which counts a page shared by forked processes once
# (summed RSS counts the shared kept frames and libraries once per process).
TARGET_LOADER_PSS_MB = 2048.0
TARGET_PREDICT_SPEEDUP = 3.0  # predict_ms_per_video at most a third of the pipeline's
TARGET_ONNX_SPEEDUP = 4.0  # predict_onnx_ms_per_video at most a quarter of the pipeline's
# Each way of predicting scores the one clip the pipeline scores and returns the best label.
ONE_LABEL_ONE_CLIP = ViewOptions(clips=1, top_k=1)
PREDICT_ROUNDS = 3  # passes over the files per way of predicting (see `measure_prediction`)
# The ways `measure_prediction` classifies the files: `vidcls predict` on the model (torch) and on
# its ONNX export (onnxruntime), `VideoClassifier.predict` one file per call, and the pipeline.
PREDICT_ROWS = ("predict", "predict_onnx", "predict_one_by_one", "pipeline")
TARGET_DATA_WAIT = 0.10
# The loader is timed warm and long: worker start-up and first reads (which decode whole videos to
# keep their frames) made a 240-clip figure swing from 52 to 100 clips/s between runs.
LOADER_WARM_READS = 4  # reads of each video per loader process before timing (a video missed: 2%)
LOADER_BATCHES_FACTOR = 10  # the loader is timed over this many times ``batches`` (300 batches: ~8 s at 300 clips/s)
LOADER_WINDOW = 50  # batches per rate in ``window_clips_per_s``
MIN_VIDEO_FRAMES = 150  # shorter files are decoded whole whatever a reader does: seeking is not measured
MEASUREMENTS = ("loader", "train", "predict", "eval")
DEFAULT_MEASUREMENTS = ("loader", "train", "predict")
TARGET_EVAL_S_PER_VIDEO = 1.0  # 180 test videos in 3 minutes, decoding included


def run_benchmark(
    data: str | Path,
    model: str = "tiny",
    *,
    videos: int = 48,
    batches: int = 30,
    warmup_batches: int = 2,
    batch_size: int = GUIDE_BATCH_SIZE,
    workers: int | None = None,
    device: str | None = None,
    threads: int | None = None,
    seed: int = 0,
    measure: tuple[str, ...] = DEFAULT_MEASUREMENTS,
) -> dict:
    """Run the ``measure`` measurements on the same ``videos`` files of ``data``; returns plain data
    (see the module docstring).

    ``threads`` sets torch's thread count for the run (restored after); on a machine other jobs
    share, 1 avoids OpenMP threads spinning while another process holds their core.
    """
    measure = checked_measurements(measure)
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run(data, model, videos, batches, warmup_batches, batch_size, workers, device, seed, measure)
    finally:
        torch.set_num_threads(previous_threads)


def checked_measurements(measure: Iterable[str] | None) -> tuple[str, ...]:
    """``measure`` as given (`DEFAULT_MEASUREMENTS` for None), or a ValueError naming what is not in `MEASUREMENTS`."""
    measure = DEFAULT_MEASUREMENTS if measure is None else tuple(measure)
    unknown = sorted(set(measure) - set(MEASUREMENTS))
    if unknown or not measure:
        raise ValueError(f"measure takes some of {', '.join(MEASUREMENTS)}; got {', '.join(unknown) or 'none'}")
    return measure


def _run(data, model, videos, batches, warmup_batches, batch_size, workers, device, seed, measure) -> dict:
    torch.manual_seed(seed)
    device_ = pick_device(device)
    workers = default_workers() if workers is None else workers
    records, labels = select_records(data, videos)
    loaded = create_model(model, labels)
    load_before = os.getloadavg()
    result: dict = {}
    if "loader" in measure:
        with _PeakRss() as loader_rss:
            loader = measure_loader(records, labels, loaded, GUIDE_SPEC, batch_size, workers, batches, warmup_batches, device_, seed)
        result["loader_clips_per_s"] = loader["clips_per_s"]
        result["loader"] = {**loader, **_memory(loader_rss)}
    if "train" in measure:
        with _PeakRss() as train_rss:
            train = measure_training(records, labels, loaded, batch_size, workers, batches, warmup_batches, device_, seed)
        result.update(train_clips_per_s=train["clips_per_s"], data_wait_fraction=train["data_wait_fraction"])
        result["train"] = {**train, **_memory(train_rss)}
    loader_runs = [result[part] for part in ("loader", "train") if part in result]
    if loader_runs:
        result["peak_rss_mb"] = max(_mb(_self_peak_rss()), *(run["peak_rss_mb_all_processes"] for run in loader_runs))
        result["peak_pss_mb"] = max(run["peak_pss_mb_all_processes"] for run in loader_runs)
    with tempfile.TemporaryDirectory(prefix="vidcls-benchmark-") as scratch:
        model_dir = model if Path(model).is_dir() else scratch  # a model folder is read where it is
        if model_dir == scratch:
            save_model(loaded, model_dir)
        if "predict" in measure:
            prediction = measure_prediction(model_dir, [record.path for record in records], device, scratch=Path(scratch))
            result.update(
                predict_ms_per_video=prediction["predict"]["ms_per_video"],
                predict_onnx_ms_per_video=prediction.get("predict_onnx", {}).get("ms_per_video"),
                pipeline_ms_per_video=prediction["pipeline"]["ms_per_video"],
                top1_agree=prediction["predict"]["top1_agree"], prediction=prediction,
            )
        if "eval" in measure:
            evaluation = measure_evaluation(model_dir, data, device)
            result.update(eval_s_per_video=evaluation["eval_s_per_video"],
                          predict_default_ms_per_video=evaluation["predict_ms_per_video"], evaluation=evaluation)
    frames = [record.info.num_frames for record in records]
    result.update({
        "torch": torch.__version__,
        "device": str(device_),
        "cores": os.cpu_count(),
        "machine": _machine(),
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "settings": {
            "data": str(data), "model": model, "videos": len(records), "classes": len(labels),
            "video_frames": {"min": min(frames), "mean": float(np.mean(frames)), "max": max(frames)},
            "video_size": sorted({f"{r.info.width}x{r.info.height}" for r in records}),
            "codecs": sorted({r.info.codec for r in records}),
            "batch_size": batch_size, "batches": batches, "warmup_batches": warmup_batches, "workers": workers,
            "seed": seed, "torch_threads": torch.get_num_threads(),
            "loader_spec": spec_as_dict(GUIDE_SPEC), "model_spec": spec_as_dict(loaded.spec),
            "predict_views": f"1 {loaded.spec.sampling} clip x 1 centre crop (the pipeline's frames)",
            "predict_batch_size": PREDICT_BATCH_SIZE, "predict_rounds": PREDICT_ROUNDS, "measure": list(measure),
        },
    })
    result["targets"] = check_targets(result)
    if min(frames) < MIN_VIDEO_FRAMES:
        result["warning"] = (
            f"some videos have fewer than {MIN_VIDEO_FRAMES} frames (min {min(frames)}): clips span most of such "
            "files, so the savings of seeking are not measured (see benchmarks/README.md to lengthen them)"
        )
    return result


def check_targets(result: dict) -> dict:
    """Pass/fail of each target of the figures measured, with the figure and the threshold it was held to."""
    targets = {}
    if "loader_clips_per_s" in result:
        targets["loader_clips_per_s"] = (result["loader_clips_per_s"], f">= {TARGET_LOADER_CLIPS_PER_S:g}",
                                         result["loader_clips_per_s"] >= TARGET_LOADER_CLIPS_PER_S)
    if "loader" in result:
        pss = result["loader"]["peak_pss_mb_all_processes"]
        targets["loader_peak_pss_mb"] = (pss, f"<= {TARGET_LOADER_PSS_MB:g}", pss <= TARGET_LOADER_PSS_MB)
    if "predict_ms_per_video" in result:
        speedup = result["pipeline_ms_per_video"] / max(result["predict_ms_per_video"], 1e-9)
        targets["predict_speedup_vs_pipeline"] = (speedup, f">= {TARGET_PREDICT_SPEEDUP:g}", speedup >= TARGET_PREDICT_SPEEDUP)
        targets["top1_agree"] = (result["top1_agree"], "== 1", result["top1_agree"] == 1.0)
    if "data_wait_fraction" in result:
        targets["data_wait_fraction"] = (result["data_wait_fraction"], f"< {TARGET_DATA_WAIT:g}",
                                         result["data_wait_fraction"] < TARGET_DATA_WAIT)
    if "eval_s_per_video" in result:
        for figure, seconds in (("eval_s_per_video", result["eval_s_per_video"]),
                                ("predict_default_s_per_video", result["predict_default_ms_per_video"] / 1e3)):
            targets[figure] = (seconds, f"<= {TARGET_EVAL_S_PER_VIDEO:g}", seconds <= TARGET_EVAL_S_PER_VIDEO)
    if result.get("predict_onnx_ms_per_video"):
        onnx_speedup = result["pipeline_ms_per_video"] / max(result["predict_onnx_ms_per_video"], 1e-9)
        targets["predict_onnx_speedup_vs_pipeline"] = (
            onnx_speedup, f">= {TARGET_ONNX_SPEEDUP:g}", onnx_speedup >= TARGET_ONNX_SPEEDUP
        )
    return {name: {"value": value, "target": target, "pass": bool(ok)} for name, (value, target, ok) in targets.items()}


def select_records(data: str | Path, videos: int) -> tuple[list[VideoRecord], list[str]]:
    """``videos`` readable files of ``data`` (every split), taken class by class in turn, and all class labels."""
    index = discover_dataset(data)
    by_label: dict[str, list[VideoRecord]] = {}
    for record in sorted((r for split in index.splits.values() for r in split), key=lambda r: str(r.path)):
        by_label.setdefault(record.label, []).append(record)
    interleaved = [r for group in itertools.zip_longest(*by_label.values()) for r in group if r is not None]
    return interleaved[: max(1, videos)], index.labels


def _loader(records, labels, loaded: LoadedModel, spec: ClipSpec, batch_size, workers, clips_needed, device, seed):
    """The training loader `training.loop.build_loaders` makes, over ``records`` repeated to one long epoch."""
    repeated = records * math.ceil(clips_needed / len(records))
    index = DatasetIndex(Path("."), "benchmark", labels, {"train": repeated, "val": [], "test": []})
    config = TrainConfig(data="", output="", batch_size=batch_size, workers=workers, seed=seed, progress=False)
    train_loader, _ = build_loaders(index, dataclasses.replace(loaded, spec=spec), config, device)
    return train_loader


def loader_warmup_batches(videos: int, workers: int, batch_size: int, warmup_batches: int) -> int:
    """Batches before the loader is timed: enough for each loader process to read each video
    `LOADER_WARM_READS` times, so its kept frames (`data.kept_frames`) are in place as in a
    training run's later epochs; at least ``warmup_batches``."""
    return max(warmup_batches, math.ceil(LOADER_WARM_READS * videos * max(workers, 1) / batch_size))


def measure_loader(
    records, labels, loaded, spec, batch_size, workers, batches, warmup_batches, device, seed
) -> dict:
    """Clips per second as a training step would receive them (moved to the device), warm (see
    `loader_warmup_batches`), over ``batches`` x `LOADER_BATCHES_FACTOR` batches, with the rate of
    each `LOADER_WINDOW` batches: their spread says whether the figure held still."""
    warm = loader_warmup_batches(len(records), workers, batch_size, warmup_batches)
    batches *= LOADER_BATCHES_FACTOR
    loader = _loader(records, labels, loaded, spec, batch_size, workers, (batches + warm) * batch_size, device, seed)
    batch_iter = iter(loader)
    for _ in range(warm):
        next(batch_iter)
    cpu = _CpuClock()
    clips, windows, start = 0, [], time.perf_counter()
    window_start, window_clips = start, 0
    for count, (clip_batch, label_batch) in enumerate(itertools.islice(batch_iter, batches), 1):
        clip_batch = clip_batch.to(device, non_blocking=True)
        clips += len(label_batch)
        window_clips += len(label_batch)
        if count % LOADER_WINDOW == 0:
            now = time.perf_counter()
            windows.append(round(window_clips / (now - window_start), 1))
            window_start, window_clips = now, 0
    elapsed = time.perf_counter() - start
    cpu_seconds = cpu.seconds()
    shape = list(clip_batch.shape)
    del batch_iter, loader
    gc.collect()
    return {
        "clips_per_s": clips / elapsed, "clips": clips, "seconds": elapsed, "warmup_batches": warm,
        "window_clips_per_s": windows, "cpu_ms_per_clip": 1e3 * cpu_seconds / clips, "batch_shape": shape,
        "batch_dtype": str(clip_batch.dtype),
    }


def measure_training(records, labels, loaded, batch_size, workers, batches, warmup_batches, device, seed) -> dict:
    """`training.loop.train_one_epoch` on ``batches`` batches of the model's own loader, after warm-up steps."""
    model = loaded.model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=NEW_WEIGHTS_LR, weight_decay=TrainConfig.weight_decay)
    schedule = Schedule.plan(1, batches + warmup_batches, TrainConfig.warmup_ratio, "benchmark")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    loader = _loader(records, labels, loaded, loaded.spec, batch_size, workers, (batches + warmup_batches) * batch_size, device, seed)
    batch_iter = iter(loader)
    # train_one_epoch reads any iterable of batches: the warm-up and measured steps share one epoch.
    if warmup_batches:
        train_one_epoch(model, itertools.islice(batch_iter, warmup_batches), optimizer, scheduler, loaded.spec, device)
    cpu = _CpuClock()
    row = train_one_epoch(model, itertools.islice(batch_iter, batches), optimizer, scheduler, loaded.spec, device)
    cpu_seconds = cpu.seconds()
    del batch_iter, loader
    gc.collect()
    model.eval()
    clips = row["clips_per_s"] * row["epoch_seconds"]
    return {
        "clips_per_s": row["clips_per_s"], "data_wait_fraction": row["data_wait_fraction"], "seconds": row["epoch_seconds"],
        "steps": batches, "cpu_ms_per_clip": 1e3 * cpu_seconds / max(clips, 1), "train_loss": row["train_loss"],
        "step_torch_threads": torch.get_num_threads(),
    }


def measure_evaluation(model_dir: str | Path, data: str | Path, device: str | None) -> dict:
    """`vidcls eval` of ``data``'s test split at the model's default views, then `vidcls predict` of
    the same files at those views, each timed from the call to its last result (discovery, decoding
    and the model included; the model loaded once before, as a server or a long job holds it)."""
    from vidcls.evaluation.evaluate import evaluate

    classifier = VideoClassifier(model_dir, device)
    start = time.perf_counter()
    evaluation = evaluate(classifier.loaded, data, leakage_check=False)
    eval_seconds = time.perf_counter() - start
    paths = [row["path"] for row in evaluation.predictions]
    start = time.perf_counter()
    predicted = list(classifier.predict_files(paths))
    predict_seconds = time.perf_counter() - start
    return {
        "videos": evaluation.num_videos, "clips": evaluation.clips, "crops": evaluation.crops,
        "top1": evaluation.top1, "eval_seconds": eval_seconds, "eval_s_per_video": eval_seconds / evaluation.num_videos,
        "predict_ms_per_video": 1e3 * predict_seconds / max(len(predicted), 1),
    }


def measure_prediction(
    model_dir: str | Path, paths: list[Path], device: str | None, batch_size: int = PREDICT_BATCH_SIZE,
    rounds: int = PREDICT_ROUNDS, scratch: Path | None = None,
) -> dict[str, dict]:
    """ms and CPU ms per video of every `PREDICT_ROWS` way to classify ``paths``, with the same
    model (saved in ``model_dir``, and exported to ONNX beside it), frames and files.

    Each round passes over every file once per way, the order of the ways turning from round to
    round, so a change in the machine's load hits all of them alike; top-1 labels are the first
    round's. A batched way is timed from its first file in to its last result out.
    """
    predictors, load_s = _predictors(model_dir, device, batch_size, scratch or Path(model_dir))
    for predictor in predictors.values():  # warm-up: first allocations, lazy initialisation
        predictor(paths[:batch_size])
    timers = {name: _Timed(predictor) for name, predictor in predictors.items()}
    names = list(timers)
    for round_ in range(rounds):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            timers[name](paths)
    pipeline = timers["pipeline"]
    return {
        name: {"ms_per_video": timer.seconds * 1e3 / (rounds * len(paths)),
               "cpu_ms_per_video": timer.cpu_seconds * 1e3 / (rounds * len(paths)),
               "speedup_vs_pipeline": pipeline.seconds / max(timer.seconds, 1e-9),
               "top1_agree": float(np.mean([a == b for a, b in zip(timer.results[0], pipeline.results[0])])),
               "videos": len(paths), "rounds": rounds, "load_s": load_s[name]}
        for name, timer in timers.items()
    }


def _predictors(model_dir: str | Path, device: str | None, batch_size: int, scratch: Path) -> tuple[dict, dict[str, float]]:
    """One callable per `PREDICT_ROWS` name, paths -> top-1 labels, and the seconds each took to load
    (the ONNX export written under ``scratch``)."""
    loaded, load_s = {}, {}
    onnx_dir = _onnx_export(model_dir, scratch / "onnx")
    for name, directory in (("predict", model_dir), ("predict_onnx", onnx_dir), ("pipeline", model_dir)):
        if directory is None:
            continue
        start = time.perf_counter()
        loaded[name] = _pipeline(directory, device) if name == "pipeline" else VideoClassifier(directory, device)
        load_s[name] = time.perf_counter() - start
    load_s["predict_one_by_one"] = load_s["predict"]

    def batched(classifier: VideoClassifier):
        return lambda paths: [r["top_k"][0]["label"] for r in classifier.predict_files(paths, ONE_LABEL_ONE_CLIP, batch_size=batch_size)]

    predictors = {
        "predict": batched(loaded["predict"]),
        "predict_onnx": batched(loaded["predict_onnx"]) if "predict_onnx" in loaded else None,
        "predict_one_by_one": lambda paths: [loaded["predict"].predict(p, ONE_LABEL_ONE_CLIP).top_k[0]["label"] for p in paths],
        "pipeline": lambda paths: [loaded["pipeline"](str(p), top_k=1)[0]["label"] for p in paths],
    }
    return {name: predictor for name, predictor in predictors.items() if predictor}, load_s


def _onnx_export(model_dir: str | Path, output: Path) -> Path | None:
    """The model exported to ``output`` (`vidcls export`), or None, logged, when onnxruntime is not
    installed or the architecture is not exportable: the ONNX row is then left out."""
    from vidcls.publish.export import export_onnx

    try:
        export_onnx(model_dir, output)
    except ModelError as error:
        logger.warning("no onnxruntime row: %s", error)
        return None
    return output


def _pipeline(model_dir: str, device: str | None):
    """``transformers.pipeline("video-classification")`` on the saved model, as the guide calls it."""
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # its deprecation notes about image processors are not ours to fix
    return pipeline("video-classification", model=model_dir, device=pick_device(device), trust_remote_code=True)


class _Timed:
    """Calls a function, keeping its results and the total wall and CPU time spent in it."""

    def __init__(self, function) -> None:
        self.function, self.seconds, self.cpu_seconds, self.results = function, 0.0, 0.0, []

    def __call__(self, *args):
        start, cpu = time.perf_counter(), time.process_time()
        self.results.append(self.function(*args))
        self.seconds += time.perf_counter() - start
        self.cpu_seconds += time.process_time() - cpu


class _CpuClock:
    """CPU seconds used by this process and its children (DataLoader workers) since creation."""

    def __init__(self) -> None:
        self.start = self._now()

    @staticmethod
    def _now() -> dict[int, float]:
        process = psutil.Process()
        times = {}
        for proc in [process, *process.children(recursive=True)]:
            try:
                cpu = proc.cpu_times()
                times[proc.pid] = cpu.user + cpu.system
            except psutil.Error:
                continue
        return times

    def seconds(self) -> float:
        now = self._now()
        return sum(total - self.start.get(pid, 0.0) for pid, total in now.items())


class _PeakRss:
    """Peaks of the summed RSS and PSS of this process and its children, sampled in a thread:
    RSS every 50 ms, PSS (and the list of children) every 20 samples.

    Loader processes are forked from this one, and each one's RSS counts the pages it still
    shares with it (torch's libraries, the model): summed, RSS counted the main process's 0.8 GB
    about three times. PSS splits a shared page between the processes that map it, so its sum is
    the memory they take from the machine. Listing children scans /proc and reading PSS walks a
    process's page tables (about 10 ms each), hence the slower rate: a sampler that scanned every
    time took 13% of a core from the loader it measured.
    """

    def __init__(self, interval: float = 0.05, refresh_every: int = 20) -> None:
        self.interval, self.refresh_every = interval, refresh_every
        self.peak = self.peak_pss = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        main = psutil.Process()
        processes = [main]
        for count in itertools.count():
            if count % self.refresh_every == 0:
                processes = [main, *main.children(recursive=True)]
                self.peak_pss = max(self.peak_pss, sum(_pss(proc.pid) for proc in processes))
            total = 0
            for proc in processes:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> "_PeakRss":
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _pss(pid: int) -> int:
    """Proportional set size in bytes (0 where the kernel does not say, or the process ended)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _self_peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def _memory(peaks: _PeakRss) -> dict:
    return {"peak_rss_mb_all_processes": _mb(peaks.peak), "peak_pss_mb_all_processes": _mb(peaks.peak_pss)}


def _mb(num_bytes: int) -> float:
    return round(num_bytes / 2**20, 1)


def _machine() -> dict:
    import av
    import transformers

    return {
        "cpu": _cpu_model() or platform.processor() or platform.machine(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "transformers": transformers.__version__,
        "av": av.__version__,
        "libavcodec": ".".join(map(str, av.library_versions.get("libavcodec", ()))),
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
