"""vidcls: fine-tune, evaluate, run and serve video classifiers from a folder of labelled videos.

The Python API mirrors the CLI, one function per command; each returns plain data. Torch
and transformers load on first use, so `import vidcls` stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from vidcls.errors import DatasetError, ModelError, OutputExistsError, VidclsError, VideoReadError

if TYPE_CHECKING:
    from vidcls.evaluation.evaluate import EvaluationResult
    from vidcls.inference.options import ViewOptions
    from vidcls.data.discovery import DatasetIndex
    from vidcls.data.synthetic import SyntheticDatasetSummary
    from vidcls.training.hf_trainer import TrainerData
    from vidcls.training.loop import TrainResult

__version__ = "0.1.0"
__all__ = [
    "DatasetError", "ModelError", "OutputExistsError", "VidclsError", "VideoReadError",
    "benchmark", "discover", "evaluate", "predict", "preview", "sample", "train", "trainer_data",
]


def sample(out: str | Path, **options) -> SyntheticDatasetSummary:
    """Write the embedded synthetic motion dataset (`vidcls sample`); options as `write_synthetic_dataset`."""
    from vidcls.data.synthetic import write_synthetic_dataset

    return write_synthetic_dataset(Path(out), **options)


def discover(data: str | Path, **options) -> DatasetIndex:
    """Classes, splits, videos and unreadable files of a dataset folder (`vidcls data`)."""
    from vidcls.data.discovery import discover_dataset

    return discover_dataset(data, **options)


def train(data: str | Path, output: str | Path, **options) -> TrainResult:
    """Train a classifier into ``output`` (`vidcls train`); options are `TrainConfig`'s fields.

    On a CPU shared with other jobs, set ``OMP_WAIT_POLICY=PASSIVE`` in the environment before torch
    is first imported, as the `vidcls` command does (README, "Other jobs on the machine")."""
    from vidcls.training.config import TrainConfig
    from vidcls.training.run import train as run_training

    return run_training(TrainConfig(data=str(data), output=str(output), **options))


def trainer_data(data: str | Path, **options) -> TrainerData:
    """The model, datasets, collator and metrics `transformers.Trainer` takes, read from ``data`` as
    `vidcls train` reads it; ``.save(trainer)`` then writes a vidcls model folder (docs/trainer.md).
    Options: model (as `vidcls train --model`), its clip settings, flip, seed, split ratios, leakage_check."""
    from vidcls.training.hf_trainer import trainer_data as build

    return build(data, **options)


def evaluate(
    model: str | Path, data: str | Path, *, report: str | Path | None = None, update_card: bool = True, **options
) -> EvaluationResult:
    """Multi-view evaluation, all that `vidcls eval` does: with ``report`` also the Markdown report
    there; a test-split score of a model folder goes into its model card, and into the experiment
    trackers its training reported to (`vidcls train --report-to`), unless ``update_card`` is False. What was written is in ``result.outputs``. Options: `ViewOptions`' fields (clips,
    crops, sampling) or ``options=ViewOptions(...)``, and `evaluation.evaluate`'s own."""
    from vidcls.evaluation.evaluate import evaluate as run_evaluation
    from vidcls.publish.model_card import update_test_scores
    from vidcls.evaluation.report import write_report

    views, rest = _view_options(options)
    result = run_evaluation(model, data, views, **rest)
    if report is not None:
        result.outputs["report"] = str(write_report(result, report)["markdown"])
    if update_card and Path(model).is_dir():
        from vidcls.training.tracking import log_test_scores

        written = {"model_card": update_test_scores(model, result), "tracker": log_test_scores(model, result)}
        result.outputs.update({key: str(value) for key, value in written.items() if value})
    return result


def predict(model: str | Path, paths: Iterable[str | Path] | str | Path, **options) -> list[dict]:
    """Top-k labels for files and folders (`vidcls predict`); one dict per video, errors included.
    Options: `ViewOptions`' fields (top_k, clips, crops, window, sampling) or
    ``options=ViewOptions(...)``, and batch_size, device."""
    from vidcls.inference.prediction import predict as run_prediction

    if isinstance(paths, (str, Path)):
        paths = [paths]
    views, rest = _view_options(options)
    return run_prediction(model, paths, views, **rest)


def _view_options(options: dict) -> tuple[ViewOptions, dict]:
    """Keyword arguments routed once: the `ViewOptions` (given whole as ``options=``, or field by
    field) and the rest, for the job itself."""
    from vidcls.inference.options import ViewOptions

    given = options.pop("options", None)
    views, rest = ViewOptions.take_from(options)
    if given is not None and len(rest) < len(options):
        raise VidclsError("pass the view options either as options=ViewOptions(...) or one by one, not both")
    return given or views, rest


def preview(video: str | Path, out_gif: str | Path, **options) -> dict:
    """A GIF of the frames the model sees (`vidcls preview`)."""
    from vidcls.inference.preview import write_preview

    return write_preview(video, out_gif, **options)


def benchmark(data: str | Path, **options) -> dict:
    """Loader, training and prediction speed against transformers' pipeline (`vidcls benchmark`)."""
    from vidcls.benchmarking import run_benchmark

    return run_benchmark(data, **options)
