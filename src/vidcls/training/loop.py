"""Fine-tune (or train from scratch) a video classifier on a dataset folder.

The loop reads top to bottom: build data and model, then per epoch train, validate, log,
checkpoint, keep the best. The output folder ends as an ordinary transformers model
directory (best weights by validation accuracy) plus `metrics.jsonl`, `training_curve.png`
and `checkpoints/last.pt`, from which `resume=True` continues after a kill.

Under `torchrun` or `accelerate launch` the same loop runs data-parallel (`vidcls.training.distributed`):
`batch_size` stays the batch of one optimizer step over all processes, each process trains on
its share of every step and scores its share of the validation videos, every process reaches
the same metrics, and only the main one writes.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from vidcls.training import distributed
from vidcls.data.datasets import (
    EpochSampler, EvalClipDataset, KeptBatches, TrainClipDataset, collate_eval, collate_train, default_workers,
    kept_video_budget,
)
from vidcls.errors import OutputExistsError, VidclsError
from vidcls.inference.forward import model_logits, score_loader
from vidcls.data.discovery import (
    SPLIT_FILE, BadFile, DatasetIndex, check_trainable, discover_dataset, save_split,
)
from vidcls.publish.model_card import CARD_FILE, write_model_card
from vidcls.models.loading import MODELING_FILES, PRESETS, create_model
from vidcls.models.saving import LoadedModel, save_model
from vidcls.models.pretrained import PRETRAINED, parameter_groups
from vidcls.training.progress import RunProgress, ScheduleNews
from vidcls.training.run_state import RunState
from vidcls.training.schedule import DEFAULT_TIME_BUDGET_MINUTES, Schedule
from vidcls.training.tracking import TENSORBOARD_FOLDER, RunTrackers, resolve_backends
from vidcls.training.config import (
    ARGS_FILE, DEFAULT_FINE_TUNE_EPOCHS, FINE_TUNE_LR, MAX_AUTO_EPOCHS, MIN_SCRATCH_STEPS, NEW_WEIGHTS_LR, TrainConfig,
    names_where,
)

logger = logging.getLogger(__name__)

CHECKPOINT = Path("checkpoints") / "last.pt"
METRICS_FILE = "metrics.jsonl"
CURVE_FILE = "training_curve.png"
# What a training run writes; --overwrite removes these and nothing else.
OUTPUT_ENTRIES = (
    "config.json", "model.safetensors", "preprocessor_config.json", "video_preprocessor_config.json",
    *MODELING_FILES, METRICS_FILE, CURVE_FILE, ARGS_FILE, "checkpoints", CARD_FILE, SPLIT_FILE, TENSORBOARD_FOLDER,
)
# What an experiment tracker keeps of the output as the model (not the checkpoint, nor its own event files).
MODEL_ENTRIES = tuple(name for name in OUTPUT_ENTRIES if name not in ("checkpoints", TENSORBOARD_FOLDER))


@dataclass
class TrainResult:
    """What a run produced, as plain data."""

    output: str
    best_epoch: int
    best_val_accuracy: float | None
    epochs_run: int
    history: list[dict] = field(default_factory=list)
    bad_files: list[BadFile] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    is_main_process: bool = True  # False in the other processes of a data-parallel run
    search: dict | None = None  # what the recipe search tried and kept (`training.recipe_search`), when it ran

    @classmethod
    def of(cls, state: RunState, output: Path, index: DatasetIndex, is_main_process: bool = True) -> TrainResult:
        return cls(
            output=str(output), best_epoch=state.best_epoch, best_val_accuracy=state.best_val_accuracy,
            epochs_run=state.epoch, history=state.history, bad_files=index.bad_files, labels=index.labels,
            is_main_process=is_main_process,
        )


def training_data(config: TrainConfig, is_main_process: bool) -> DatasetIndex:
    """The dataset as a run reads it: scanned once, refused when it cannot train, and, in the main
    process of a new run with ``config.leakage_check``, checked for held-out videos with a copy in
    train, whose scores would measure memory (`vidcls.audit`)."""
    index = discover_dataset(config.data, val_ratio=config.val_ratio, test_ratio=config.test_ratio, seed=config.seed)
    check_trainable(index)
    if config.leakage_check and not config.resume and is_main_process:
        from vidcls.audit.leakage import leakage_warning  # signatures load only when the check runs

        warning = leakage_warning(index, f"vidcls audit {index.root}")
        if warning:
            logger.warning("warning: %s", warning)
    return index


def check_output(output: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to touch a used folder unless told (every process checks, before any writes)."""
    if resume:
        if not (output / CHECKPOINT).is_file():
            raise VidclsError(f"{output}: nothing to resume (no {CHECKPOINT}); drop --resume to start a new run")
    elif output.exists() and any(output.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"{output} already exists and is not empty; pass --overwrite to replace a previous run "
            "or --resume to continue it"
        )


def prepare_output(output: Path, resume: bool) -> None:
    """Create the folder; a new run first removes what an earlier one wrote there, and only that."""
    if not resume:
        for name in OUTPUT_ENTRIES:
            target = output / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    output.mkdir(parents=True, exist_ok=True)


# Settings of where a run happens (`train_config`'s "runtime" kind): a resume takes them from the new call.
# grad_accum splits a step's batch, not the step, so a resume may change it (as the process count).
RUNTIME_SETTINGS = names_where("runtime")


def resumed_config(output: Path, asked: TrainConfig) -> TrainConfig:
    """The original run's settings from train_args.json, so a resumed run continues that run
    (same data split, schedule and epochs); only where it runs comes from the new call."""
    saved = json.loads((output / ARGS_FILE).read_text())
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    original = TrainConfig(**{k: v for k, v in saved.items() if k in fields})
    ignored = [
        f"--{name.replace('_', '-')}" for name in fields - set(RUNTIME_SETTINGS) - {"data", "output"}
        if getattr(asked, name) not in (None, getattr(TrainConfig, name, None), getattr(original, name))
    ]
    if ignored:
        logger.warning("resuming %s with its original settings; ignoring %s", output, ", ".join(sorted(ignored)))
    runtime = {name: getattr(asked, name) for name in RUNTIME_SETTINGS}
    return dataclasses.replace(original, data=asked.data, output=asked.output, **runtime)


def micro_batch_size(batch_size: int, world_size: int, grad_accum: int, clips_per_video: int = 1) -> int:
    """Clips per forward in each process: the step's batch split over processes and micro-batches.

    Keeping `batch_size` the batch of one optimizer step means one process and eight, with or
    without accumulation, train on the same clips per step with the same learning rate. Each
    micro-batch holds whole videos, ``clips_per_video`` clips each.
    """
    parts = world_size * grad_accum
    if batch_size % (parts * clips_per_video):
        raise VidclsError(
            f"--batch-size {batch_size} (the batch of one optimizer step over all processes) does not split "
            f"evenly over {world_size} processes x --grad-accum {grad_accum} x --clips-per-video {clips_per_video}; "
            f"pass a multiple of {parts * clips_per_video}"
        )
    return batch_size // parts


def batch_layout(config: TrainConfig, world_size: int) -> dict:
    """How a step's batch was split, as train_args.json records it beside the learning rate."""
    return {
        "world_size": world_size, "global_batch_size": config.batch_size,
        "per_device_batch_size": micro_batch_size(config.batch_size, world_size, config.grad_accum, config.clips_per_video),
        "grad_accum": config.grad_accum,
    }


def write_train_args(
    output: Path, config: TrainConfig, labels: list[str], resumed_after: int | None, world_size: int = 1,
    tracking: dict | None = None,
) -> None:
    """train_args.json: the run's resolved settings, kept as first written; a resume only adds a line
    (with its own process count and accumulation, which may differ from the first run's). ``tracking``:
    where the experiment trackers log (`RunTrackers.record`), when the run reports to any."""
    path = output / ARGS_FILE
    layout = batch_layout(config, world_size)
    if resumed_after is None:
        settings = list(asdict(config).items())
        after_lr = [key for key, _ in settings].index("lr") + 1
        record = {**dict(settings[:after_lr]), **layout, **dict(settings[after_lr:]), "labels": labels, "resumed": []}
        if tracking:
            record["tracking"] = tracking
    else:
        record = json.loads(path.read_text())
        record.setdefault("resumed", []).append(
            {"after_epoch": resumed_after, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **layout}
        )
    path.write_text(json.dumps(record, indent=2))


def training_workers(device: torch.device) -> int:
    """Loader processes for training: as many as feed a GPU; on the CPU one per 4 cores (at least
    one), so the training step keeps its threads on the other cores (benchmarks/README.md, "Figures
    behind defaults")."""
    if device.type == "cuda":
        return default_workers()
    return max(1, (os.cpu_count() or 1) // 4)


def build_loaders(
    index: DatasetIndex, loaded: LoadedModel, config: TrainConfig, device: torch.device,
    processes: distributed.Processes = distributed.Processes(),
):
    """This process's training loader (its share of each step's uint8 clips, shuffled) and
    validation loader (its share of the videos, centre clip, kept in memory after the first
    epoch when it fits; None without a val split)."""
    workers = training_workers(device) if config.workers is None else config.workers
    clips = micro_batch_size(config.batch_size, processes.world_size, config.grad_accum, config.clips_per_video)
    common = dict(num_workers=workers, persistent_workers=workers > 0, pin_memory=device.type == "cuda")
    train_set = TrainClipDataset(
        index.split("train"), index.label2id, loaded.spec, flip=config.flip, clips_per_video=config.clips_per_video,
        kept_bytes=kept_video_budget(1),
    )
    if workers > 0:  # kept before the workers fork: one copy for all of them
        train_set.keep_videos_now(threads=os.cpu_count() or 1)
    sampler = EpochSampler(len(train_set), config.seed, processes.rank, processes.world_size)
    # Its own generator, so creating worker seeds never draws from the global torch RNG.
    generator = torch.Generator().manual_seed(config.seed)
    train_loader = DataLoader(
        train_set, batch_size=clips // config.clips_per_video, sampler=sampler, generator=generator,
        collate_fn=collate_train, **common,
    )
    val_records = index.splits.get("val") or []
    val_loader = None
    if val_records:
        val_set = EvalClipDataset(val_records, loaded.spec)
        # Every world_size-th video, unpadded: the gathered scores hold each video exactly once.
        shard = range(processes.rank, len(val_set), processes.world_size)
        val_loader = KeptBatches(DataLoader(val_set, batch_size=clips, sampler=shard, collate_fn=collate_eval, **common))
    return train_loader, val_loader


def resolve_epochs(epochs: int | None, from_scratch: bool, steps_per_epoch: int, steps: int | None = None) -> int:
    """The epochs asked for (or those holding ``steps``), else DEFAULT_FINE_TUNE_EPOCHS to fine-tune,
    or enough for MIN_SCRATCH_STEPS from scratch.

    A model trained from scratch needs a number of optimizer steps, not of epochs: on a small
    dataset 10 epochs are a few dozen steps, far too few, and the `motion` preset on cluttered
    motion tells a growing object from a shrinking one on held-out videos only after thousands
    (benchmarks/quality.md). That plan is the longest the default runs: the time budget and the
    plateau rule (`vidcls.training.schedule`) end it sooner where the machine is slow or the work is done.
    """
    if epochs:
        return epochs
    if steps:
        return math.ceil(steps / steps_per_epoch)
    if not from_scratch:
        return DEFAULT_FINE_TUNE_EPOCHS
    return min(MAX_AUTO_EPOCHS, max(DEFAULT_FINE_TUNE_EPOCHS, math.ceil(MIN_SCRATCH_STEPS / steps_per_epoch)))


def check_schedule_options(config: TrainConfig) -> None:
    """A time budget sizes the default schedule; with --epochs or --steps the schedule is exact."""
    if config.time_budget and (config.epochs or config.steps):
        raise VidclsError("--time-budget sizes the default schedule; --epochs and --steps give an exact one: pass only one")
    if config.epochs and config.steps:
        raise VidclsError("--epochs and --steps both set the schedule's length: pass only one")


def plan_schedule(config: TrainConfig, from_scratch: bool, steps_per_epoch: int) -> Schedule:
    """The run's schedule: exact with epochs or steps, else the default plan, adapted as it runs."""
    epochs = resolve_epochs(config.epochs, from_scratch, steps_per_epoch, config.steps)
    if config.epochs or config.steps:
        asked = f"--epochs {config.epochs}" if config.epochs else f"--steps {config.steps}"
        return Schedule.plan(epochs, steps_per_epoch, config.warmup_ratio, f"{asked}: an exact schedule, run to its end")
    budget = DEFAULT_TIME_BUDGET_MINUTES if config.time_budget is None else config.time_budget
    return Schedule.plan(
        epochs, steps_per_epoch, config.warmup_ratio, f"the default schedule ran to its planned end ({epochs} epochs)",
        adaptive=True, budget_minutes=budget,
    )


def validation_metrics(
    model, loader, index_records, label2id: dict[str, int], spec,
    processes: distributed.Processes = distributed.Processes(),
) -> dict:
    """Top-1 accuracy, mean loss (negative log probability of the true class) and the number of videos
    counted on the validation loader (those that fail to decode are left out), over every process's
    videos: each scores its share, all get all scores."""
    model.eval()
    probabilities, positions, _failed = score_loader(model, loader, spec)
    shares = processes.gather((probabilities, positions))
    probabilities = torch.cat([share[0] for share in shares])
    positions = [position for share in shares for position in share[1]]
    if not positions:
        return {"val_accuracy": float("nan"), "val_loss": float("nan"), "val_videos": 0}
    truth = torch.tensor([label2id[index_records[i].label] for i in positions])
    loss = -probabilities.gather(1, truth[:, None]).clamp_min(1e-12).log().mean()
    return {
        "val_accuracy": float((probabilities.argmax(-1) == truth).float().mean()), "val_loss": float(loss),
        "val_videos": len(positions),
    }


def optimizer_steps(batches, grad_accum: int):
    """The micro-batches of each optimizer step, grad_accum at a time; the last step takes what is left."""
    iterator = iter(batches)
    while step := list(itertools.islice(iterator, grad_accum)):
        yield step


def accumulate_gradients(model, micro_batches: list, spec, device, label_smoothing: float) -> float:
    """Backward over one step's micro-batches; returns the step's mean loss in this process.

    Each micro-batch's summed loss is divided by the step's clip count, so the gradient is the
    step's mean however the batch was split; DDP all-reduces (averages) only on the last one.
    """
    clips_in_step = sum(len(labels) for _, labels in micro_batches)
    step_loss = 0.0
    for number, (clip_batch, labels) in enumerate(micro_batches, 1):
        clip_batch = clip_batch.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        with distributed.gradient_sync(model, sync=number == len(micro_batches)):
            logits = model_logits(model, clip_batch, spec)
            loss = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=label_smoothing, reduction="sum")
            (loss / clips_in_step).backward()
        step_loss += loss.item() / clips_in_step
    return step_loss


def train_one_epoch(
    model, loader, optimizer, scheduler, spec, device, on_step: Callable[[float], None] | None = None,
    label_smoothing: float = 0.0, grad_accum: int = 1, processes: distributed.Processes = distributed.Processes(),
) -> dict:
    """One pass over the training loader; returns loss, clips/s and the share of time spent waiting for data.

    Loss and clips/s are over all processes (each process's loss is its share's mean, and shares
    are equal); the waiting share and the seconds are this process's. ``on_step`` hears each
    optimizer step's loss (the progress bar).
    """
    model.train()
    losses, clips, wait = [], 0, 0.0
    start = fetch_start = time.perf_counter()
    for micro_batches in optimizer_steps(loader, grad_accum):
        wait += time.perf_counter() - fetch_start
        losses.append(accumulate_gradients(model, micro_batches, spec, device, label_smoothing))
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        clips += sum(len(labels) for _, labels in micro_batches)
        if on_step:
            on_step(losses[-1])
        fetch_start = time.perf_counter()
    elapsed = time.perf_counter() - start
    loss_sum, all_clips = processes.sum([sum(losses), clips])
    return {
        "train_loss": loss_sum / (len(losses) * processes.world_size),
        "clips_per_s": all_clips / elapsed,
        "data_wait_fraction": wait / elapsed,
        "lr": scheduler.get_last_lr()[0],
        "epoch_seconds": elapsed,
    }


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically, so a kill during the write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    partial.replace(path)


def plot_training_curve(history: list[dict], out: Path) -> None:
    """Loss and validation accuracy per epoch, as a PNG a person can glance at."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, loss_axis = plt.subplots(figsize=(6, 3.5))
    loss_axis.plot(epochs, [row["train_loss"] for row in history], "o-", color="tab:blue", label="train loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("train loss", color="tab:blue")
    accuracy = [row.get("val_accuracy") for row in history]
    if any(a is not None for a in accuracy):
        accuracy_axis = loss_axis.twinx()
        accuracy_axis.plot(epochs, accuracy, "s-", color="tab:orange", label="val accuracy")
        accuracy_axis.set_ylabel("val accuracy", color="tab:orange")
        accuracy_axis.set_ylim(0, 1.02)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def train_all_layers(
    config: TrainConfig, processes: distributed.Processes, stop_rule: Callable[[RunState], str | None] | None = None,
) -> TrainResult:
    """The loop (see the module docstring) in ``processes``; `training.run.train` starts it, or the
    linear probe for ``config.freeze_backbone``. ``stop_rule``, after each epoch, may end the run
    with a reason (the recipe search's race)."""
    started = time.perf_counter()
    output = Path(config.output)
    check_output(output, config.resume, config.overwrite)
    check_schedule_options(config)
    if config.resume:
        config = resumed_config(output, config)
    backends = resolve_backends(config.report_to)  # a tracker that is not installed fails before any work
    device = processes.device
    torch.manual_seed(config.seed)
    index = training_data(config, processes.is_main)
    loaded = create_model(config.model, index.labels, config.num_frames, config.sample_rate, config.sampling)
    model = loaded.model.to(device)
    from_scratch = config.model in PRESETS
    lr = config.lr or (NEW_WEIGHTS_LR if from_scratch or config.model in PRETRAINED else FINE_TUNE_LR)
    optimizer = torch.optim.AdamW(parameter_groups(model, lr, config.model), lr=lr, weight_decay=config.weight_decay)
    train_loader, val_loader = build_loaders(index, loaded, config, device, processes)
    steps_per_epoch = math.ceil(len(train_loader) / config.grad_accum)
    schedule = plan_schedule(config, from_scratch, steps_per_epoch)
    config.lr = lr
    if schedule.adaptive:  # train_args.json records the budget used; epochs stay None: the plan adapts
        config.time_budget = (schedule.budget_seconds or 0) / 60
    # The schedule is the LambdaLR factor: the scheduler's state dict carries its cuts (vidcls.training.schedule).
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    state = RunState()
    if config.resume:
        state = _restore(output / CHECKPOINT, model, optimizer, scheduler, index.labels)
        started -= state.history[-1].get("elapsed_seconds", 0.0) if state.history else 0.0
        logger.info("resuming %s after epoch %d", output, state.epoch)
    processes.barrier()  # every process has read the earlier run before the main one rewrites it
    trackers = RunTrackers()  # only the main process reports
    if processes.is_main:
        prepare_output(output, config.resume)
        save_split(index, output, seed=config.seed, val_ratio=config.val_ratio, test_ratio=config.test_ratio)
        trackers = start_trackers(output, config, backends, state.epoch * steps_per_epoch if config.resume else None)
        write_train_args(
            output, config, index.labels, state.epoch if config.resume else None, processes.world_size, trackers.record()
        )
    trained = distributed.wrap(model, processes)
    val_records = index.splits.get("val") or []
    progress = RunProgress(config.progress and processes.is_main, steps_per_epoch, schedule.end_epoch, state.epoch)
    news = ScheduleNews()
    with progress:
        while state.epoch < schedule.end_epoch:
            epoch, epoch_start = state.epoch + 1, time.perf_counter()
            # Every random draw of an epoch follows from (seed, epoch), so a resumed run repeats it exactly;
            # each process draws its own dropout masks, as one process does for each clip of its batch.
            torch.manual_seed(config.seed * 100_003 + epoch + 1_000_003 * processes.rank)
            train_loader.sampler.set_epoch(epoch)
            row = {"epoch": epoch, **train_one_epoch(
                trained, train_loader, optimizer, scheduler, loaded.spec, device, progress.step,
                config.label_smoothing, config.grad_accum, processes,
            )}
            if val_loader is not None:
                row.update(validation_metrics(model, val_loader, val_records, index.label2id, loaded.spec, processes))
            # Averaged over processes, so every process makes the same time-budget decision.
            wall, elapsed = processes.sum([time.perf_counter() - epoch_start, time.perf_counter() - started])
            row.update(wall_seconds=wall / processes.world_size, elapsed_seconds=elapsed / processes.world_size)
            improved = state.record(row)
            _adapt_schedule(schedule, state.history, news, progress)
            if processes.is_main:
                _write_epoch(output, loaded, state, improved)
                # Before the checkpoint: a kill between the two repeats the epoch on resume, never skips it.
                trackers.log_epoch(row, epoch * steps_per_epoch)
                save_checkpoint(output / CHECKPOINT, {
                    **state.as_checkpoint(), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "labels": index.labels,
                })
            if config.early_stopping and state.stale_epochs >= config.early_stopping:
                schedule.reason = f"--early-stopping {config.early_stopping}: no better validation accuracy for as many epochs"
                logger.info("no better validation accuracy for %d epochs: stopping", config.early_stopping)
                break
            if stop_rule and (reason := stop_rule(state)):  # the recipe search's race (`training.recipe_search`)
                schedule.reason = reason
                logger.info("stopping: %s", reason)
                break
    state.stopped, state.planned_epochs = schedule.reason, schedule.planned_epochs
    logger.info("stopped after epoch %d: %s", state.epoch, schedule.reason)
    if processes.is_main:
        record_stop(output, state)
        write_model_card(output, config, index, loaded.spec, state, device, processes.world_size)
        finish_tracking(output, trackers)
    processes.barrier()  # the others finish only once the model is whole on disk
    return TrainResult.of(state, output, index, processes.is_main)


def _adapt_schedule(schedule: Schedule, history: list[dict], news: ScheduleNews, progress: RunProgress) -> None:
    """Let the schedule adapt to the epoch just run; say when the run will end once, and again only
    when that changes materially (`vidcls.training.progress`), and move the progress display on."""
    row = history[-1]
    change = schedule.after_epoch(row["epoch"], history, row["elapsed_seconds"])
    progress.epoch_done(row, schedule.end_epoch, schedule.expected_seconds(history) - row["elapsed_seconds"])
    line = news.after_epoch(schedule, history, change)
    if line:
        logger.info("%s", line)


def start_trackers(output: Path, config: TrainConfig, backends: list[str], resumed_step: int | None) -> RunTrackers:
    """New tracker runs in ``backends``, with the run's settings; a resumed run reopens the ones
    train_args.json names instead, to continue them after ``resumed_step``."""
    if resumed_step is None:
        trackers = RunTrackers.start(backends, output, asdict(config))
    else:
        trackers = RunTrackers.reopen(json.loads((output / ARGS_FILE).read_text()).get("tracking"), output, resumed_step)
    if trackers:
        logger.info("reporting to %s", trackers.describe())
    return trackers


def finish_tracking(output: Path, trackers: RunTrackers) -> None:
    """Keep the model with the trackers' runs (not the checkpoint), close them, and record the last
    step logged in train_args.json, where `vidcls eval` puts the test scores."""
    if not trackers:
        return
    path = output / ARGS_FILE
    record = json.loads(path.read_text())
    record["tracking"] = trackers.record()
    path.write_text(json.dumps(record, indent=2))
    trackers.log_model([output / name for name in MODEL_ENTRIES if (output / name).exists()])
    trackers.close()


def record_stop(output: Path, state: RunState) -> None:
    """Add why and where the run ended to train_args.json (rewritten by a resumed run that ends later)."""
    path = output / ARGS_FILE
    record = json.loads(path.read_text())
    record["stopped"] = {"after_epoch": state.epoch, "planned_epochs": state.planned_epochs, "reason": state.stopped}
    path.write_text(json.dumps(record, indent=2))


def _write_epoch(output: Path, loaded: LoadedModel, state: RunState, improved: bool) -> None:
    """Save the model as the output when the epoch is the best so far; rewrite metrics and curve."""
    if improved:
        save_model(loaded, output)
    # Rewritten whole from the history, so a resumed run never repeats an epoch's line.
    (output / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in state.history))
    plot_training_curve(state.history, output / CURVE_FILE)


def _restore(path: Path, model, optimizer, scheduler, labels: list[str]) -> RunState:
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    if checkpoint["labels"] != labels:
        raise VidclsError(
            f"{path}: the checkpoint was trained on classes {checkpoint['labels']}, the data now has {labels}"
        )
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    return RunState.from_checkpoint(checkpoint)
