"""Score a trained model on a dataset split: multi-view testing, metrics, per-video predictions.

Each video is scored as VideoMAE and mmaction2 test it: ``clips`` test clips (sampled as the
model was trained, `vidcls.data.sampling`) x 1 or 3 crops, softmax averaged over those views (`EvalClipDataset` +
`video_probabilities`, the same code as training's validation and `predict`).

Default views (`ViewOptions()`): the model's default clips (`ClipSpec.clips`: `DEFAULT_CLIPS`, or 1 for a
model that reads the whole video in one clip) x 1 centre crop, the `predict` default, so the accuracy
reported here is the one predictions get. VideoMAE reports 5 clips x 3 crops (Kinetics, UCF101)
and 2 x 3 (Something-Something v2); pass ``ViewOptions(clips=5, crops=3)`` to follow that protocol, at 15
forward passes per video instead of 4.

Classes are matched by name, so a model trained on more classes than the dataset holds can be
scored on it; a dataset class the model does not know is an error raised before any video is
decoded. The split is the one saved with the model when it was trained on this folder (see
`layout`), so a test score never includes a video the model trained on. Metrics are computed
with numpy from the confusion matrix.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from vidcls.audit.leakage import leakage_warning
from vidcls.data.datasets import EvalClipDataset, collate_eval, default_workers
from vidcls.defaults import EVAL_BATCH_SIZE
from vidcls.errors import DatasetError, ModelError, VidclsError
from vidcls.inference.forward import pick_device, score_loader
from vidcls.data.discovery import DatasetIndex, VideoRecord, discover_dataset
from vidcls.models.loading import load_model, spec_as_dict
from vidcls.models.saving import LoadedModel
from vidcls.inference.prediction import top_k_labels
from vidcls.data.clip_spec import ClipSpec
from vidcls.inference.options import ViewOptions

logger = logging.getLogger(__name__)

TOP_K_SHOWN = 3  # labels kept per video for the report


@dataclass
class EvaluationResult:
    """Everything an evaluation found, as plain data; `as_dict()` is the JSON schema."""

    model: str
    data: str
    split: str
    labels: list[str]  # confusion-matrix order: the dataset's classes, then other model classes predicted
    num_videos: int  # videos scored (failed files excluded)
    clips: int
    crops: int
    top1: float
    top5: float | None  # None when the model has 5 classes or fewer
    mean_class_accuracy: float  # mean recall over classes with at least one video
    per_class: dict[str, dict]  # label -> precision, recall, f1, support
    confusion_matrix: list[list[int]]  # rows: true label, columns: predicted label
    failed: list[dict]  # {"path", "reason"}: unreadable when the dataset was read, or when decoded here
    damaged: list[dict]  # {"path", "reason"}: scored on the frames that could be read (truncated, decode errors)
    split_source: str  # where the split came from: "folders", "seed N", or the split file saved with the model
    videos_per_s: float
    predictions: list[dict]  # per video: path, true_label, correct, top3 [{"label", "score"}]
    spec: dict
    outputs: dict[str, str] = field(default_factory=dict)  # files written from it: "report", "model_card"
    leakage: str | None = None  # held-out videos of this split with a copy in another split (`vidcls.audit`)

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate(
    model: str | Path | LoadedModel,
    data: str | Path,
    options: ViewOptions = ViewOptions(),
    *,
    split: str = "test",
    batch_size: int = EVAL_BATCH_SIZE,
    workers: int | None = None,
    model_copies: int | None = None,
    device: str | None = None,
    progress: bool = False,
    engine: str = "local",
    ray_address: str | None = None,
    leakage_check: bool = True,
) -> EvaluationResult:
    """Score every video of one split of ``data`` with ``model`` (see the module docstring).

    Each video is scored on ``options``' views (clips x crops; its sampling overrides the one the
    model was trained with); a timeline window has no place in an evaluation and is refused.
    ``device`` applies when the model is loaded here; a `LoadedModel` stays where it is.
    ``engine="ray"`` scores the videos
    on Ray (`ray_engine`: ``model_copies`` actors run the model, at ``ray_address`` or RAY_ADDRESS) with the
    same views and metrics. ``leakage_check`` compares the split's videos with the other splits'
    (`vidcls.audit.leakage.leakage_warning`) and says in the result when some have a copy there.
    """
    if options.window is not None:
        raise VidclsError("evaluation scores whole videos: a window (timeline) is for predict and serve")
    loaded = model if isinstance(model, LoadedModel) else load_model(str(model), pick_device(device))
    spec, options = loaded.spec.sampled_as(options.sampling), options.for_model(loaded.spec)
    index = discover_dataset(data, model_dir=loaded.name, decode_all=True)
    records = index.split(split)
    check_labels(index.labels, loaded)
    started = time.perf_counter()
    if engine == "ray":
        from vidcls.inference.ray_engine import score_records

        probabilities, scored, decode_failures = score_records(
            loaded.name, spec, records, options, model_copies=model_copies, batch_size=batch_size, device=device,
            address=ray_address,
        )
    else:
        probabilities, scored, decode_failures = score_videos(
            loaded.model, spec, records, options, batch_size=batch_size, workers=workers, progress=progress,
        )
    elapsed = time.perf_counter() - started
    if not scored:
        raise DatasetError(f"{index.root}: none of the {len(records)} videos of split '{split}' could be decoded")
    scored_records = [records[i] for i in scored]
    return EvaluationResult(
        model=loaded.name, data=str(index.root), split=split, num_videos=len(scored), clips=options.clips, crops=options.crops,
        failed=discovery_failures(index, records) + decode_failures,
        damaged=[{"path": str(r.path), "reason": r.info.damage} for r in records if r.info.damage],
        split_source=index.split_source,
        videos_per_s=len(scored) / elapsed,
        predictions=video_predictions(scored_records, probabilities, loaded.labels),
        spec=spec_as_dict(spec),
        leakage=leakage_warning(index, f"vidcls audit {index.root} --model {loaded.name}", split) if leakage_check else None,
        **classification_metrics(scored_records, probabilities, index.labels, loaded.labels),
    )


def check_labels(dataset_labels: list[str], loaded: LoadedModel) -> None:
    """Refuse a dataset with classes the model cannot predict, before any clip is decoded."""
    missing = sorted(set(dataset_labels) - set(loaded.labels))
    if missing:
        known = ", ".join(loaded.labels[:10]) + (", ..." if len(loaded.labels) > 10 else "")
        raise ModelError(
            f"{loaded.name} does not know the dataset classes {', '.join(missing)} (its {len(loaded.labels)} "
            f"classes: {known}); remove those class folders, or train a model on this dataset"
        )


def score_videos(
    model: torch.nn.Module, spec: ClipSpec, records: list[VideoRecord], options: ViewOptions, *, batch_size: int,
    workers: int | None, progress: bool,
) -> tuple[torch.Tensor, list[int], list[dict]]:
    """Probabilities (scored videos, model classes) on ``options``' clips x crops, the positions in
    ``records`` they belong to, and the failures."""
    workers = default_workers() if workers is None else workers
    device = next(model.parameters()).device
    loader = DataLoader(
        EvalClipDataset(records, spec, num_clips=options.clips, num_crops=options.crops),
        batch_size=batch_size, num_workers=workers, collate_fn=collate_eval, pin_memory=device.type == "cuda",
    )
    scores, positions, failed = score_loader(model, loader, spec, progress)
    return scores, positions, [{"path": str(records[s.index].path), "reason": s.error} for s in failed]


def discovery_failures(index: DatasetIndex, records: list[VideoRecord]) -> list[dict]:
    """Files left out when the dataset was read: those of this split's folder (split layout) or all (flat layout)."""
    bad_files = index.bad_files
    if index.layout == "split":
        split_folder = index.root / records[0].path.relative_to(index.root).parts[0]
        bad_files = [bad for bad in bad_files if bad.path.is_relative_to(split_folder)]
    return [{"path": str(bad.path), "reason": bad.reason} for bad in bad_files]


def classification_metrics(
    records: list[VideoRecord], probabilities: torch.Tensor, dataset_labels: list[str], model_labels: list[str]
) -> dict:
    """top1, top5, mean class accuracy, per-class scores and the confusion matrix, matched by class name."""
    model_id = {label: i for i, label in enumerate(model_labels)}
    true_labels = [record.label for record in records]
    predicted_labels = [model_labels[i] for i in probabilities.argmax(-1).tolist()]
    others = sorted(set(predicted_labels) - set(dataset_labels), key=model_id.get)
    labels = list(dataset_labels) + others
    position = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, ([position[t] for t in true_labels], [position[p] for p in predicted_labels]), 1)
    per_class = per_class_scores(matrix, labels)
    recalls = [scores["recall"] for scores in per_class.values() if scores["support"]]
    return dict(
        labels=labels,
        top1=float(np.trace(matrix) / matrix.sum()),
        top5=top_k_accuracy(probabilities, [model_id[t] for t in true_labels], 5) if len(model_labels) > 5 else None,
        mean_class_accuracy=float(np.mean(recalls)),
        per_class=per_class,
        confusion_matrix=matrix.tolist(),
    )


def per_class_scores(matrix: np.ndarray, labels: list[str]) -> dict[str, dict]:
    """Precision, recall, F1 and support per class; a ratio with nothing to divide by is 0, as in scikit-learn."""
    hits = np.diag(matrix)
    support, predicted = matrix.sum(1), matrix.sum(0)
    precision = np.divide(hits, predicted, out=np.zeros(len(labels)), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros(len(labels)), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(len(labels)), where=both > 0)
    return {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support)
    }


def top_k_accuracy(probabilities: torch.Tensor, true_ids: list[int], k: int) -> float:
    """Share of videos whose true class is among the ``k`` most probable."""
    top = probabilities.topk(k, dim=-1).indices
    return float((top == torch.tensor(true_ids)[:, None]).any(-1).float().mean())


def video_predictions(records: list[VideoRecord], probabilities: torch.Tensor, model_labels: list[str]) -> list[dict]:
    """Per video: path, true label, whether top-1 is right, and the top-3 labels with scores."""
    predictions = []
    for record, scores in zip(records, probabilities):
        top = top_k_labels(scores, model_labels, TOP_K_SHOWN)
        predictions.append({
            "path": str(record.path), "true_label": record.label,
            "correct": top[0]["label"] == record.label, "top3": top,
        })
    return predictions
