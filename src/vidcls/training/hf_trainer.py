"""vidcls's data path handed to `transformers.Trainer`: datasets, a collator, metrics and the save step.

For users whose training is built around `Trainer` (callbacks, DeepSpeed or FSDP, W&B, TensorBoard
or MLflow), `trainer_data` gives what the Hugging Face video classification guide builds with
pytorchvideo and `evaluate`, from a vidcls dataset folder and model name: the model with its head
sized to the labels, map-style training and evaluation datasets that read clips as `vidcls train`
does (the model's frames, sampling and sizes; decoding and cropping in uint8, `data.views`), a
collator that normalises with the model's processor mean and std (`Trainer` hands the model
floats; vidcls's own loop does this on the device), and `compute_metrics`. `TrainerData.save`
writes an ordinary vidcls model folder, read by `vidcls eval`, `predict`, `serve` and
`transformers.pipeline`. What `Trainer` does not do (time budget, exact resume across processes,
the chosen learning rates and schedule) stays in `vidcls.training.loop`: docs/trainer.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from torch.utils.data import Dataset
from transformers import EvalPrediction, PreTrainedModel, TrainerCallback, TrainingArguments, TrainerState

from vidcls.data.clip_spec import ClipSpec
from vidcls.data.datasets import EvalClipDataset, TrainClipDataset, default_workers, kept_video_budget
from vidcls.data.discovery import DatasetIndex, save_split
from vidcls.data.transforms import normalize_batch
from vidcls.errors import DatasetError, OutputExistsError
from vidcls.models.loading import create_model
from vidcls.models.saving import LoadedModel, save_processors, save_settings, video_processor_for
from vidcls.training import distributed
from vidcls.training.config import TrainConfig
from vidcls.training.loop import training_data

if TYPE_CHECKING:
    from transformers import Trainer

LABELS_KEY = "labels"  # what transformers models take their targets as


class TrainerTrainSet(Dataset):
    """One random training clip per item, drawn as `vidcls train` draws it (`TrainClipDataset`:
    frames, scale, crop, flip; a video that fails is logged and another taken).

    `Trainer` samples plain indices, so each item's draws are seeded from torch's generator, which
    `Trainer` seeds (``TrainingArguments.seed``) in the main process and in every loader worker.
    """

    def __init__(self, clips: TrainClipDataset, input_name: str) -> None:
        self.clips = clips
        self.input_name = input_name

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        seed = int(torch.randint(0, 2**62, ()))
        clip, label = self.clips[(index, seed, 0)]
        return {self.input_name: clip[0], LABELS_KEY: label}


class TrainerEvalSet(Dataset):
    """Each video's test clip, centre-cropped (vidcls's validation view, the one `transformers.pipeline`
    takes); a video that cannot be decoded is logged and has no clip (``None``): the collator leaves it out."""

    def __init__(self, clips: EvalClipDataset, label2id: dict[str, int], input_name: str) -> None:
        self.clips = clips
        self.label2id = label2id
        self.input_name = input_name

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        sample = self.clips[index]
        clip = None if sample.views is None else sample.views[0]
        return {self.input_name: clip, LABELS_KEY: self.label2id[self.clips.records[index].label]}


@dataclass(frozen=True)
class ClipCollator:
    """A batch as the model takes it: uint8 clips (T, C, H, W) stacked and normalised with the model's
    processor mean and std, ``(x / 255 - mean) / std`` (the pixels `transformers.pipeline` gives the
    model), and their labels. Items without a clip (an undecodable evaluation video) are left out."""

    spec: ClipSpec
    input_name: str = "pixel_values"

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        readable = [example for example in examples if example[self.input_name] is not None]
        if not readable:
            raise DatasetError(
                f"none of the {len(examples)} videos of this batch could be decoded (named in the log above); "
                "move them out of the data folder"
            )
        clips = torch.stack([example[self.input_name] for example in readable])
        labels = torch.tensor([example[LABELS_KEY] for example in readable])
        return {self.input_name: normalize_batch(clips, self.spec), LABELS_KEY: labels}


def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """Top-1 accuracy (the guide's ``accuracy``, so ``metric_for_best_model="accuracy"`` works), the mean of
    per-class recalls over the classes present, and top-5 accuracy with more than 5 classes: the
    scores `vidcls eval` reports, on one clip per video."""
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    labels = np.asarray(prediction.label_ids)
    predicted = logits.argmax(-1)
    recalls = [float((predicted[labels == label] == label).mean()) for label in np.unique(labels)]
    metrics = {"accuracy": float((predicted == labels).mean()), "mean_class_accuracy": float(np.mean(recalls))}
    if logits.shape[-1] > 5:
        top5 = np.argsort(-logits, axis=-1)[:, :5]
        metrics["top5_accuracy"] = float((top5 == labels[:, None]).any(-1).mean())
    return metrics


def restore_best_weights(args: TrainingArguments, state: TrainerState, model: object) -> None:
    """Make ``model`` the best checkpoint's weights, all of them, after ``load_best_model_at_end``.

    Why: `save_pretrained` writes some weights under their published names (VideoMAE's query and
    value biases as ``q_bias``, ``v_bias``), and `Trainer` loads the best checkpoint back with a plain
    ``load_state_dict``, which skips those with a warning, so the model kept the last step's biases
    beside the best step's other weights (transformers issue 43701, PR 48822). `from_pretrained`
    renames them. DeepSpeed and FSDP load their own checkpoint formats and are left alone.
    """
    best_saved = state.best_model_checkpoint and Path(state.best_model_checkpoint).is_dir()  # not on every node
    sharded = args.deepspeed or args.fsdp
    if args.load_best_model_at_end and best_saved and isinstance(model, PreTrainedModel) and not sharded:
        best = type(model).from_pretrained(state.best_model_checkpoint)
        model.load_state_dict(best.state_dict())


class BestWeights(TrainerCallback):
    """`restore_best_weights` once `Trainer` has loaded the best checkpoint, so what follows
    (``trainer.evaluate``, ``predict``, saving) scores the best model."""

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control, model=None, **kwargs) -> None:
        restore_best_weights(args, state, model)


@dataclass
class TrainerData:
    """Everything `transformers.Trainer` takes from vidcls, built by `trainer_data`.

    ``processor`` is the video processor `transformers.pipeline` reads, built from the model's
    clip settings; passed to `Trainer` as ``processing_class``, every checkpoint folder `Trainer`
    writes is a model folder vidcls and the pipeline read.
    """

    model: PreTrainedModel
    processor: object
    train_dataset: TrainerTrainSet
    eval_dataset: TrainerEvalSet | None  # the val split
    test_dataset: TrainerEvalSet | None
    data_collator: ClipCollator
    compute_metrics: Callable[[EvalPrediction], dict[str, float]]
    callbacks: list[TrainerCallback]  # `BestWeights`
    loaded: LoadedModel
    index: DatasetIndex
    config: TrainConfig

    @property
    def labels(self) -> list[str]:
        return self.index.labels

    def save(self, trainer: Trainer, output: str | Path | None = None, *, overwrite: bool = False) -> Path:
        """Save ``trainer``'s model (after ``load_best_model_at_end``, the best) as a vidcls model folder
        (default: ``args.output_dir``): weights and config with the labels and clip settings through
        ``trainer.save_model`` (which gathers DeepSpeed and FSDP shards and writes once), then, from
        the main process, both processors and the split, so `vidcls eval` scores only held-out videos.
        A folder already holding a model is refused unless ``overwrite``."""
        output = Path(output or trainer.args.output_dir)
        taken = (output / "config.json").exists()
        trainer.accelerator.wait_for_everyone()  # every process looks before the main one writes
        if taken and not overwrite:
            raise OutputExistsError(f"{output} already holds a model; pass overwrite=True to replace it")
        if not any(isinstance(callback, BestWeights) for callback in trainer.callback_handler.callbacks):
            restore_best_weights(trainer.args, trainer.state, trainer.model)
        trainer.save_model(str(output))
        if trainer.is_world_process_zero():
            save_processors(self.loaded, output)
            config = self.config
            save_split(self.index, output, seed=config.seed, val_ratio=config.val_ratio, test_ratio=config.test_ratio)
        return output


def trainer_data(
    data: str | Path,
    model: str = TrainConfig.model,
    *,
    num_frames: int | None = TrainConfig.num_frames,
    sample_rate: int | None = TrainConfig.sample_rate,
    sampling: str | None = TrainConfig.sampling,
    flip: bool = TrainConfig.flip,
    seed: int = TrainConfig.seed,
    val_ratio: float = TrainConfig.val_ratio,
    test_ratio: float = TrainConfig.test_ratio,
    leakage_check: bool = TrainConfig.leakage_check,
) -> TrainerData:
    """Read ``data`` as `vidcls train` does (discovery, split, bad files left out, the leakage warning)
    and build ``model`` (a preset, a model folder or a hub id) for its labels, with the datasets,
    collator and metrics `transformers.Trainer` takes; the settings are `vidcls train`'s."""
    config = TrainConfig(
        data=str(data), output="", model=model, num_frames=num_frames, sample_rate=sample_rate, sampling=sampling,
        flip=flip, seed=seed, val_ratio=val_ratio, test_ratio=test_ratio, leakage_check=leakage_check,
    )
    index = training_data(config, distributed.from_environment(torch.device("cpu")).is_main)
    torch.manual_seed(seed)  # the new head's (or the preset's) initial weights
    loaded = create_model(model, index.labels, num_frames, sample_rate, sampling)
    save_settings(loaded)  # config.vidcls, so every checkpoint Trainer writes samples frames as training did
    input_name = getattr(loaded.model, "main_input_name", "pixel_values")  # V-JEPA 2: pixel_values_videos
    spec = loaded.spec
    train_clips = TrainClipDataset(
        index.split("train"), index.label2id, spec, flip=flip, kept_bytes=kept_video_budget(default_workers())
    )

    def eval_set(split: str) -> TrainerEvalSet | None:
        records = index.splits.get(split) or []
        return TrainerEvalSet(EvalClipDataset(records, spec), index.label2id, input_name) if records else None

    return TrainerData(
        model=loaded.model, processor=video_processor_for(spec, like=loaded.processor),
        train_dataset=TrainerTrainSet(train_clips, input_name), eval_dataset=eval_set("val"),
        test_dataset=eval_set("test"), data_collator=ClipCollator(spec, input_name), compute_metrics=compute_metrics,
        callbacks=[BestWeights()],
        loaded=loaded, index=index, config=config,
    )
