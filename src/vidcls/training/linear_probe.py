"""Train only the head of a pretrained model on features computed once (``vidcls train --freeze-backbone``).

With the backbone frozen, every epoch would run the same clips through the same network; here each
video's clip (the test clip: segment sampling's centre clip, centre crop) goes through the backbone
once, its pooled features stay in memory, and the head trains on them for many epochs in seconds.
The output is the whole model (pretrained backbone + trained head), an ordinary model folder that
eval, predict, serve and transformers.pipeline read like any other.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from vidcls.training import distributed
from vidcls.data.datasets import EvalClipDataset, collate_eval
from vidcls.errors import VidclsError
from vidcls.inference.forward import autocast
from vidcls.data.discovery import save_split
from vidcls.publish.model_card import write_model_card
from vidcls.models.loading import create_model
from vidcls.models.saving import save_model
from vidcls.training.run_state import RunState
from vidcls.training.tracking import resolve_backends
from vidcls.data.clip_spec import ClipSpec
from vidcls.data.transforms import normalize_batch

logger = logging.getLogger(__name__)

PROBE_EPOCHS = 200  # full passes over the cached features: a few seconds for a few hundred videos
PROBE_LR = 1e-2  # the head alone, from zero, on fixed features


@torch.inference_mode()
def clip_features(
    model, records, label2id: dict[str, int], spec: ClipSpec, device: torch.device, workers: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(videos, features) of each readable video's test clip, and their label ids; unreadable videos are left out."""
    loader = DataLoader(EvalClipDataset(records, spec), batch_size=4, num_workers=workers, collate_fn=collate_eval)
    features, labels = [], []
    for views, positions, _failed in loader:
        if views is None:
            continue
        flat = views.flatten(0, 1).to(device)  # one view per video
        with autocast(device):
            features.append(model.pooled_features(normalize_batch(flat, spec)).float().cpu())
        labels.extend(label2id[records[i].label] for i in positions)
    if not features:
        return torch.empty(0, model.classifier.in_features), torch.empty(0, dtype=torch.long)
    return torch.cat(features), torch.tensor(labels)


def train_linear_probe(config, processes: distributed.Processes):
    """`training.run.train` for ``config.freeze_backbone``: same inputs, same output folder, same result."""
    from vidcls.training.loop import (  # the run's bookkeeping is training's, shared
        METRICS_FILE, CURVE_FILE, TrainResult, check_output, finish_tracking, plot_training_curve, prepare_output,
        start_trackers, training_data, write_train_args,
    )

    if config.resume:
        raise VidclsError("--resume does not apply to --freeze-backbone: start the probe again (it takes seconds)")
    if processes.world_size > 1:
        raise VidclsError("--freeze-backbone runs in one process; start it without torchrun")
    output = Path(config.output)
    check_output(output, config.resume, config.overwrite)
    backends = resolve_backends(config.report_to)
    device = processes.device
    torch.manual_seed(config.seed)
    index = training_data(config, is_main_process=True)
    loaded = create_model(config.model, index.labels, config.num_frames, config.sample_rate, config.sampling)
    model = loaded.model.to(device).eval()
    if not hasattr(model, "pooled_features"):
        raise VidclsError(f"{config.model}: --freeze-backbone needs a pretrained model with a feature head (i3d-kinetics400)")
    workers = config.workers if config.workers is not None else 1
    started = time.perf_counter()
    train_x, train_y = clip_features(model, index.split("train"), index.label2id, loaded.spec, device, workers)
    val_x, val_y = clip_features(model, index.splits.get("val") or [], index.label2id, loaded.spec, device, workers)
    logger.info("features of %d training and %d validation videos computed", len(train_y), len(val_y))
    config.epochs = config.epochs or PROBE_EPOCHS
    config.lr = config.lr or PROBE_LR
    head = model.classifier
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    prepare_output(output, resume=False)
    save_split(index, output, seed=config.seed, val_ratio=config.val_ratio, test_ratio=config.test_ratio)
    trackers = start_trackers(output, config, backends, None)
    write_train_args(output, config, index.labels, None, tracking=trackers.record())
    steps_per_epoch = math.ceil(len(train_y) / config.batch_size)
    state = RunState()
    best_head = copy.deepcopy(head.state_dict())
    generator = torch.Generator().manual_seed(config.seed)
    for epoch in range(1, config.epochs + 1):
        row = {"epoch": epoch, "train_loss": head_epoch(model, train_x, train_y, optimizer, config, generator, device)}
        # The first epoch's time includes computing the features, so the run's time adds up.
        row["epoch_seconds"], started = time.perf_counter() - started, time.perf_counter()
        if len(val_y):
            row.update(val_accuracy=head_accuracy(model, val_x, val_y, device), val_videos=len(val_y))
        if state.record(row):
            best_head = copy.deepcopy(head.state_dict())
        trackers.log_epoch(row, epoch * steps_per_epoch)
        if config.early_stopping and state.stale_epochs >= config.early_stopping:
            break
    head.load_state_dict(best_head)
    save_model(loaded, output)
    (output / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in state.history))
    plot_training_curve(state.history, output / CURVE_FILE)
    write_model_card(output, config, index, loaded.spec, state, device, 1)
    finish_tracking(output, trackers)
    return TrainResult.of(state, output, index)


def head_epoch(model, features, labels, optimizer, config, generator, device) -> float:
    """One shuffled pass of the head over the cached features (dropout as the full model trains)."""
    model.dropout.train()
    order = torch.randperm(len(labels), generator=generator)
    losses = []
    for start in range(0, len(order), config.batch_size):
        chosen = order[start : start + config.batch_size]
        x, y = features[chosen].to(device), labels[chosen].to(device)
        logits = model.classifier(model.dropout(x))
        loss = torch.nn.functional.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.dropout.eval()
    return sum(losses) / max(1, len(losses))


@torch.no_grad()
def head_accuracy(model, features, labels, device) -> float:
    """Top-1 of the head on cached features (NaN without any)."""
    if not len(labels):
        return math.nan
    logits = model.classifier(features.to(device))
    return float((logits.argmax(-1).cpu() == labels).float().mean())

