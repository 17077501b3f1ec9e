"""A head on frozen pretrained features (``vidcls train --freeze-backbone``, and the search's pretrained recipe).

Each video goes through the backbone once, read as the saved model will read it (`features_spec`:
frames spread over the whole video in consecutive sub-clips, whole frames uncropped), and, where
flips are allowed, its mirror image too. The head is then not trained by gradient steps, which
underfit (benchmarks/transfer.md), but fitted as an L2-regularised multinomial logistic regression
(scikit-learn) on the unit-length descriptors: its strength C, and whether to average the mirror
image, are chosen by cross-validation over the training and validation videos, and it is refitted
on all of them. Its coefficients become the classifier's weight and
bias and the choices the model config's descriptor settings (`modeling_i3d`), so the saved
model's one forward, in vidcls or `transformers.pipeline`, computes what the head was fitted on.
The output is the whole model, an ordinary model folder.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch.utils.data import DataLoader

from vidcls.training import distributed
from vidcls.data.clip_spec import ClipSpec
from vidcls.data.datasets import EvalClipDataset, collate_eval
from vidcls.data.discovery import DatasetIndex, VideoRecord, save_split
from vidcls.errors import VidclsError
from vidcls.inference.forward import clips_per_forward, scores_in_bf16, scoring_pixels, scoring_precision
from vidcls.models.loading import create_model
from vidcls.models.saving import LoadedModel, save_model
from vidcls.models.pretrained import (
    FEATURES_FRAME_BACKBONE, FEATURES_FRAME_STRIDE, FEATURES_SUB_CLIPS, PRETRAINED, WeightsError,
    efficientnet_lite0_state_dict, features_spec,
)
from vidcls.publish.model_card import write_model_card
from vidcls.training.loop import (
    ARGS_FILE, METRICS_FILE, TrainResult, check_output, finish_tracking, prepare_output, start_trackers, training_data,
    write_train_args,
)
from vidcls.training.run_state import RunState
from vidcls.training.tracking import resolve_backends

logger = logging.getLogger(__name__)

# Inverse regularisation strengths tried on the validation split. On unit-length features the best
# are large (Weizmann and UCF101 clips, benchmarks/real.md: C 100-1000), and nearby values score
# within a few points, so a coarse grid is enough.
HEAD_C_GRID = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
HEAD_C_WITHOUT_VALIDATION = 100.0  # with too few videos a class to cross-validate
HEAD_FOLDS = 5  # cross-validation folds that choose C: about 70 fits of a fraction of a second
HEAD_MAX_ITER = 1000
FEATURES_BATCH = 4  # videos per forward while computing features


@dataclass
class VideoFeatures:
    """Each readable video's backbone features, sub-clips averaged, before the unit-length scaling;
    of its mirror image too when flips are allowed; and its label id."""

    plain: np.ndarray
    mirrored: np.ndarray | None
    labels: np.ndarray
    groups: np.ndarray  # each video's UCF101 group (`VideoRecord.group`), None where its name has none
    part_sizes: tuple[int, ...]  # the descriptor's parts (I3D's, the frames'), side by side in a row
    mirror_seconds: float = 0.0  # of the time computing them, what the mirror images took

    @classmethod
    def joined(cls, parts: list[VideoFeatures]) -> VideoFeatures:
        """The videos of ``parts``, in order (mirror images only when every part has them)."""
        mirrored = None if any(part.mirrored is None for part in parts) else np.concatenate([part.mirrored for part in parts])
        return cls(
            np.concatenate([part.plain for part in parts]), mirrored, np.concatenate([part.labels for part in parts]),
            np.concatenate([part.groups for part in parts]), parts[0].part_sizes, sum(part.mirror_seconds for part in parts),
        )

    def descriptors(self, flip: bool) -> np.ndarray:
        """What the head reads (`I3DForVideoClassification.descriptor`): mirror image averaged when
        ``flip``, each part scaled to unit length, joined, the whole scaled to unit length."""
        features = (self.plain + self.mirrored) / 2 if flip else self.plain
        split = np.split(features, np.cumsum(self.part_sizes)[:-1], axis=1)
        return _unit(np.concatenate([_unit(part) for part in split], axis=1))


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


@dataclass
class HeadFit:
    """The head kept, the settings it was fitted with and what each candidate scored on validation."""

    weight: np.ndarray  # (classes, features)
    bias: np.ndarray
    c: float
    flip: bool
    train_accuracy: float  # on every video it was fitted on (training and validation)
    val_accuracy: float | None  # of the same settings fitted on the training videos alone
    val_loss: float | None
    tried: list[dict] = field(default_factory=list)  # each C and mirror choice, cross-validated


@torch.inference_mode()
def video_features(
    model, records: list[VideoRecord], label2id: dict[str, int], spec: ClipSpec, device: torch.device, workers: int,
    mirrored: bool,
) -> VideoFeatures:
    """`VideoFeatures` of ``records``, each video decoded once; unreadable videos are left out (and logged)."""
    loader = DataLoader(
        EvalClipDataset(records, spec), batch_size=FEATURES_BATCH, num_workers=workers, collate_fn=collate_eval
    )
    plain, mirror, labels, groups, mirror_seconds = [], [], [], [], 0.0
    bf16 = scores_in_bf16(model, device)  # the precision predict and eval will score the features model in
    for views, positions, _failed in loader:
        if views is None:
            continue
        pixels = scoring_pixels(views.flatten(0, 1).to(device), spec, bf16)  # one view per video
        with scoring_precision(device, bf16):
            for clips in pixels.split(clips_per_forward(model, device, FEATURES_BATCH)):
                plain.append(model.raw_features(clips).float().cpu())
                if mirrored:
                    started = time.perf_counter()
                    mirror.append(model.raw_features(clips.flip(-1)).float().cpu())
                    mirror_seconds += time.perf_counter() - started
        labels.extend(label2id[records[i].label] for i in positions)
        groups.extend(records[i].group for i in positions)
    width = model.classifier.in_features
    stack = lambda parts: torch.cat(parts).numpy() if parts else np.empty((0, width), np.float32)  # noqa: E731
    return VideoFeatures(
        stack(plain), stack(mirror) if mirrored else None, np.asarray(labels, dtype=np.int64),
        np.asarray(groups, dtype=object), model.part_sizes, mirror_seconds,
    )


def fit_head(train: VideoFeatures, val: VideoFeatures, num_classes: int, flips: tuple[bool, ...]) -> HeadFit:
    """The head: C and the mirror averaging chosen by cross-validation over the training and
    validation videos together (`HEAD_FOLDS` folds, by UCF101 group where the names carry one; top-1,
    ties: the lower log-loss), then refitted on all of them. A few dozen validation videos saturate or
    are noise as a chooser (benchmarks/real.md); the validation split still scores a fit on the
    training videos alone at the chosen settings, the figure the recipe search compares. Every part
    is read: choosing I3D's features alone by cross-validation lost on held-out actors what the
    frames' features add (benchmarks/real.md: a Weizmann fold 0.833 against 0.933 joined), and
    joined they never scored lower on a test split there."""
    pooled = VideoFeatures.joined([train, val])
    folds = _folds(pooled)
    if folds is None:
        c, flip, tried = HEAD_C_WITHOUT_VALIDATION, flips[0], []
    else:
        tried = [
            {"C": c, "flip": flip, **_cross_validated(pooled, folds, num_classes, c, flip)}
            for flip in flips for c in HEAD_C_GRID
        ]
        best = max(tried, key=lambda row: (row["cv_accuracy"], -row["cv_loss"]))
        c, flip = best["C"], best["flip"]
    x = pooled.descriptors(flip)
    weight, bias = _regression(x, pooled.labels, num_classes, c)
    fit = HeadFit(weight, bias, c, flip, _accuracy(weight, bias, x, pooled.labels)[0], None, None, tried)
    if len(val.labels):
        held_out = _regression(train.descriptors(flip), train.labels, num_classes, c)
        fit.val_accuracy, fit.val_loss = _accuracy(*held_out, val.descriptors(flip), val.labels)
    return fit


def _folds(features: VideoFeatures) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Stratified folds (grouped when every video has a group), None with too few videos a class."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    classes = np.unique(features.labels)
    counts = [np.sum(features.labels == label) for label in classes]
    splits = min(HEAD_FOLDS, min(counts, default=0))
    if splits < 2 or len(classes) < 2:
        return None
    grouped = all(group is not None for group in features.groups)
    if grouped and min(len(set(features.groups[features.labels == label])) for label in classes) >= splits:
        splitter = StratifiedGroupKFold(splits, shuffle=True, random_state=0)
        return list(splitter.split(features.plain, features.labels, features.groups))
    return list(StratifiedKFold(splits, shuffle=True, random_state=0).split(features.plain, features.labels))


def _cross_validated(features: VideoFeatures, folds, num_classes: int, c: float, flip: bool) -> dict:
    """Top-1 and log-loss of the regression over ``folds``, every video scored once."""
    x, right, losses = features.descriptors(flip), 0, 0.0
    for fit_rows, scored in folds:
        weight, bias = _regression(x[fit_rows], features.labels[fit_rows], num_classes, c)
        accuracy, loss = _accuracy(weight, bias, x[scored], features.labels[scored])
        right, losses = right + accuracy * len(scored), losses + loss * len(scored)
    return {"cv_accuracy": right / len(x), "cv_loss": losses / len(x)}


def _regression(x: np.ndarray, labels: np.ndarray, num_classes: int, c: float) -> tuple[np.ndarray, np.ndarray]:
    """An L2-regularised logistic regression's (classes, features) weights and bias, even for two classes
    (and for classes absent from ``labels``: zero)."""
    from sklearn.linear_model import LogisticRegression  # here: only a probe needs scikit-learn

    # One BLAS thread: a fit on a few hundred videos takes a fraction of a second on one, and
    # minutes when threads fight over busy cores (benchmarks/real.md).
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # a convergence warning at the largest C changes nothing kept
        regression = LogisticRegression(C=c, max_iter=HEAD_MAX_ITER).fit(x, labels)
    weight = np.zeros((num_classes, x.shape[1]), np.float32)
    bias = np.zeros(num_classes, np.float32)
    if len(regression.classes_) == 2:  # one logit z for the second class: softmax of (0, z) is its sigmoid
        weight[regression.classes_[1]], bias[regression.classes_[1]] = regression.coef_[0], regression.intercept_[0]
    else:
        weight[regression.classes_], bias[regression.classes_] = regression.coef_, regression.intercept_
    return weight, bias


def _accuracy(weight: np.ndarray, bias: np.ndarray, x: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Top-1 and mean negative log probability of the true class under the head."""
    logits = torch.from_numpy(x @ weight.T + bias)
    truth = torch.from_numpy(labels)
    loss = torch.nn.functional.cross_entropy(logits, truth)
    return float((logits.argmax(-1) == truth).float().mean()), float(loss)


def data_aspect(records: list[VideoRecord]) -> float:
    """The training videos' usual shape (median width / height): the whole-frame size's aspect."""
    return float(np.median([r.info.width / r.info.height for r in records])) if records else 4 / 3


def features_model(config, records: list[VideoRecord], labels: list[str]) -> LoadedModel:
    """The pretrained model ``config.model`` set up to compute whole-video features: its clip settings
    (`features_spec`, at the training videos' aspect) and its descriptor settings, flip decided later."""
    loaded = create_model(config.model, labels, config.num_frames, config.sample_rate, config.sampling)
    model = loaded.model
    if not hasattr(model, "raw_features"):
        raise VidclsError(f"{config.model}: --freeze-backbone needs a pretrained I3D model (i3d-kinetics400)")
    loaded.spec = features_spec(loaded.spec, data_aspect(records), config.num_frames, config.model in PRETRAINED)
    model.config.num_frames, model.config.image_size = loaded.spec.num_frames, min(loaded.spec.input_size)
    model.config.sub_clips = FEATURES_SUB_CLIPS if loaded.spec.num_frames % FEATURES_SUB_CLIPS == 0 else 1
    model.config.normalize_features = True
    if config.model in PRETRAINED:
        join_frame_features(model)
    return loaded


def join_frame_features(model) -> None:
    """Join `FEATURES_FRAME_BACKBONE`'s per-frame features to I3D's; without its weights (offline, not
    cached), say so in one line and keep I3D's alone."""
    try:
        state_dict = efficientnet_lite0_state_dict()
    except WeightsError as error:
        logger.info("%s weights unavailable, I3D features alone: %s", FEATURES_FRAME_BACKBONE, error)
        return
    model.add_frame_backbone(FEATURES_FRAME_BACKBONE, state_dict, FEATURES_FRAME_STRIDE)


class FeaturesTooSlow(VidclsError):
    """Computing every video's features would take longer than the time allowed."""


@dataclass
class ProbeFit:
    """A features model with its fitted head, not yet saved, and what the fit cost."""

    loaded: LoadedModel
    fit: HeadFit
    val_videos: int
    seconds: float


def split_features(
    model, splits: list[list[VideoRecord]], label2id: dict[str, int], spec: ClipSpec, device: torch.device,
    workers: int, mirrored: bool, max_seconds: float | None = None,
) -> list[VideoFeatures]:
    """`VideoFeatures` of each list of records. With ``max_seconds`` the second batch of videos times
    the rest (the first pays for the network's first calls): when all would take longer, the mirror
    images are left out where that is enough, else `FeaturesTooSlow` is raised, before the rest is
    computed."""
    compute = lambda records, mirrored: video_features(  # noqa: E731
        model, records, label2id, spec, device, workers, mirrored
    )
    total = sum(len(records) for records in splits)
    results = []
    for records in splits:
        parts, done = [], 0
        if max_seconds and len(records) > FEATURES_BATCH:
            parts.append(compute(records[:FEATURES_BATCH], mirrored))
            timed = records[FEATURES_BATCH : 2 * FEATURES_BATCH]
            started = time.perf_counter()
            parts.append(compute(timed, mirrored))
            mirrored = _affordable(parts[-1], time.perf_counter() - started, len(timed), total, max_seconds)
            max_seconds, done = None, FEATURES_BATCH + len(timed)
        parts.append(compute(records[done:], mirrored))
        results.append(VideoFeatures.joined(parts))
    return results


def _affordable(timed: VideoFeatures, seconds: float, videos: int, total: int, max_seconds: float) -> bool:
    """Whether the mirror images fit in ``max_seconds`` at the speed ``timed`` showed; `FeaturesTooSlow`
    when even the features alone do not."""
    mirrored = timed.mirrored is not None
    if seconds / videos * total <= max_seconds:
        return mirrored
    alone = (seconds - timed.mirror_seconds) / videos * total
    if mirrored and alone <= max_seconds:
        logger.info("mirror images left out: with them the features of %d videos would take about %.1f min, "
                    "more than the %.1f min allowed", total, seconds / videos * total / 60, max_seconds / 60)
        return False
    raise FeaturesTooSlow(
        f"features of {total} videos would take about {alone / 60:.1f} min, more than the {max_seconds / 60:.1f} min allowed"
    )


def fit_probe(config, index: DatasetIndex, device: torch.device, max_seconds: float | None = None) -> ProbeFit:
    """The features model of ``config.model`` with its head fitted (`fit_head`), in memory."""
    started = time.perf_counter()
    loaded = features_model(config, index.split("train"), index.labels)
    model = loaded.model.to(device).eval()
    workers = config.workers if config.workers is not None else 1
    val_records = index.splits.get("val") or []
    val, train = split_features(
        model, [val_records, index.split("train")], index.label2id, loaded.spec, device, workers, config.flip, max_seconds,
    )
    logger.info("features of %d training and %d validation videos computed in %.0f s",
                len(train.labels), len(val.labels), time.perf_counter() - started)
    fit = fit_head(train, val, len(index.labels), (False,) if train.mirrored is None else (True, False))
    set_head(model, fit)
    logger.info("head: logistic regression, C %g, mirror image %s, features %s; val accuracy %s",
                fit.c, "averaged" if fit.flip else "not used", features_read(model),
                "n/a" if fit.val_accuracy is None else f"{fit.val_accuracy:.3f}")
    return ProbeFit(loaded, fit, len(val.labels), time.perf_counter() - started)


def train_linear_probe(config, processes: distributed.Processes):
    """`training.run.train` for ``config.freeze_backbone``: same inputs, same output folder, same result."""

    if config.resume:
        raise VidclsError("--resume does not apply to --freeze-backbone: start the probe again (it takes minutes at most)")
    if processes.world_size > 1:
        raise VidclsError("--freeze-backbone runs in one process; start it without torchrun")
    check_output(Path(config.output), config.resume, config.overwrite)
    resolve_backends(config.report_to)  # an unknown or missing tracker is refused before any feature is computed
    torch.manual_seed(config.seed)
    index = training_data(config, is_main_process=True)
    return save_probe(fit_probe(config, index, processes.device), config, index, processes.device)


def save_probe(probe: ProbeFit, config, index: DatasetIndex, device: torch.device):
    """Write the features model as the run's output folder (whatever an earlier run wrote there replaced)."""
    output = Path(config.output)
    prepare_output(output, resume=False)
    save_split(index, output, seed=config.seed, val_ratio=config.val_ratio, test_ratio=config.test_ratio)
    trackers = start_trackers(output, config, resolve_backends(config.report_to), None)
    write_train_args(output, config, index.labels, None, tracking=trackers.record())
    state = RunState()
    state.record(probe_row(probe.fit, probe.val_videos, probe.seconds))
    trackers.log_epoch(state.history[0], 1)
    state.stopped = f"the head is fitted in one step: logistic regression, C {probe.fit.c:g} chosen by cross-validation"
    save_model(probe.loaded, output)
    (output / METRICS_FILE).write_text(json.dumps(state.history[0]) + "\n")
    record_head(output, probe.fit, features_read(probe.loaded.model))
    write_model_card(output, config, index, probe.loaded.spec, state, device, 1)
    finish_tracking(output, trackers)
    return TrainResult.of(state, output, index)


def set_head(model, fit: HeadFit) -> None:
    """The fitted coefficients as the classifier, and the mirror-image choice as the model's setting."""
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(fit.weight))
        model.classifier.bias.copy_(torch.from_numpy(fit.bias))
    model.config.flip_average = fit.flip


def probe_row(fit: HeadFit, val_videos: int, seconds: float) -> dict:
    """metrics.jsonl's one row: the fit, as an epoch row reads (the model card and `TrainResult` read it)."""
    row = {"epoch": 1, "train_accuracy": fit.train_accuracy, "epoch_seconds": seconds, "C": fit.c, "flip": fit.flip}
    if fit.val_accuracy is not None:
        row.update(val_accuracy=fit.val_accuracy, val_loss=fit.val_loss, val_videos=val_videos)
    return row


def features_read(model) -> str:
    """The descriptor's parts, named: I3D's, and the frame backbone's where one is joined."""
    return " + ".join(["i3d", *([model.config.frame_backbone] if model.config.frame_backbone else [])])


def record_head(output: Path, fit: HeadFit, features: str) -> None:
    """train_args.json: the head's settings and every candidate's cross-validated score."""
    path = output / ARGS_FILE
    record = json.loads(path.read_text())
    record["head"] = {"kind": "logistic regression (L2)", "features": features, "C": fit.c, "flip_average": fit.flip,
                      "val_accuracy": fit.val_accuracy, "tried": fit.tried}
    path.write_text(json.dumps(record, indent=2))

