"""Experiment trackers a training run reports to (`vidcls train --report-to`): TensorBoard, MLflow.

`metrics.jsonl` is read by scripts; dashboards read their own formats. A tracker receives, per
epoch, the scalars Trainer users know under Trainer's names (`train/loss`,
`train/learning_rate`, `eval/accuracy`, `eval/loss`, plus `train/clips_per_second` and
`train/epoch_seconds`) at the run's optimizer step, the run's settings as hyper-parameters once,
the model folder at the end (MLflow), and later the test scores `vidcls eval` measures
(`test/accuracy`, ...), at the run's last step.

- **tensorboard**: `torch.utils.tensorboard.SummaryWriter` event files in
  ``OUTPUT/runs/<date>_<host>`` as Trainer writes them (`tensorboard --logdir OUTPUT/runs`).
- **mlflow**: one MLflow run, in ``MLFLOW_TRACKING_URI`` when set, else where MLflow itself puts
  runs by default (``mlflow.db`` and ``mlruns/`` in the working directory, what `mlflow ui`
  started there reads); ``MLFLOW_EXPERIMENT_NAME`` picks the experiment, as for Trainer.

Where each tracker logs (the event folder, the store and run id) is kept in `train_args.json`
(``tracking``), so a resumed run continues the same run at the steps that follow, and `vidcls
eval` adds the test scores to it. Both libraries are optional extras, imported only when named.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from vidcls.errors import VidclsError
from vidcls.training.config import ARGS_FILE

if TYPE_CHECKING:
    from vidcls.evaluation.evaluate import EvaluationResult

logger = logging.getLogger(__name__)

# --report-to value -> the module it needs and the extra that installs it.
BACKENDS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}
EVERY_INSTALLED = "all"
NO_TRACKING = "none"
TENSORBOARD_FOLDER = "runs"  # inside the output folder, as Trainer's default logging_dir
DEFAULT_EXPERIMENT = "Default"  # MLflow's own, where its runs go without MLFLOW_EXPERIMENT_NAME
MODEL_ARTIFACT = "model"  # the MLflow artefact path of the model folder
# A training epoch's row (metrics.jsonl) -> the tracker's name of the scalar (Trainer's names).
EPOCH_SCALARS = {
    "epoch": "train/epoch", "train_loss": "train/loss", "lr": "train/learning_rate",
    "clips_per_s": "train/clips_per_second", "epoch_seconds": "train/epoch_seconds",
    "val_accuracy": "eval/accuracy", "val_loss": "eval/loss",
}


def resolve_backends(report_to: str) -> list[str]:
    """The trackers ``report_to`` names ("tensorboard", "mlflow", both comma-separated, "all": those
    installed, "none"); a named tracker that is not installed is an error before anything runs."""
    names = [name.strip() for name in report_to.lower().split(",") if name.strip()]
    if names in ([], [NO_TRACKING]):
        return []
    if names == [EVERY_INSTALLED]:
        return [name for name, (module, _) in BACKENDS.items() if importlib.util.find_spec(module)]
    unknown = sorted(set(names) - set(BACKENDS))
    if unknown:
        raise VidclsError(
            f"--report-to {report_to}: unknown tracker {', '.join(unknown)}; "
            f"use {', '.join(BACKENDS)} (comma-separated), {EVERY_INSTALLED} or {NO_TRACKING}"
        )
    for name in names:
        module, extra = BACKENDS[name]
        if not importlib.util.find_spec(module):
            raise VidclsError(f"--report-to {name} needs the {module} package: pip install 'vidcls[{extra}]'")
    return list(dict.fromkeys(names))


class Tracker(Protocol):
    """One tracker's run: what the training loop and `vidcls eval` call, whatever the library."""

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        """Record ``scalars`` (name -> value) at optimizer step ``step``."""

    def log_model(self, files: list[Path]) -> None:
        """Keep the model folder's ``files`` with the run, where the tracker stores files."""

    def close(self) -> None:
        """Write out what is pending; the run is over (until a resume or an evaluation reopens it)."""

    def record(self) -> dict:
        """Where the tracker logs, as train_args.json keeps it to reopen the run."""

    def place(self) -> str:
        """Where the tracker logs, for a person."""


class TensorBoardTracker:
    """Event files in one folder under ``OUTPUT/runs``; a reopened folder gets a new events file beside the old."""

    def __init__(self, output: Path, log_dir: str, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = log_dir  # relative to the output folder, which may move
        # purge_step: a resumed run hides the events a killed run logged after its checkpoint.
        self.writer = SummaryWriter(log_dir=str(output / log_dir), purge_step=purge_step)

    @classmethod
    def start(cls, output: Path, hparams: dict) -> TensorBoardTracker:
        """A new event folder named as Trainer names it, with the settings as text and HParams."""
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        stamp = f"{time.strftime('%b%d_%H-%M-%S')}_{socket.gethostname()}"
        tracker = cls(output, f"{TENSORBOARD_FOLDER}/{stamp}")
        tracker.writer.add_text("args", json.dumps(hparams, indent=2))
        # HParams dashboard: the settings, and which of the scalars are the run's results.
        shown = {key: value if isinstance(value, (int, float, str, bool)) else str(value) for key, value in hparams.items()}
        for summary in hparams_summary(shown, {"eval/accuracy": math.nan, "eval/loss": math.nan}):
            tracker.writer.file_writer.add_summary(summary)
        return tracker

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()  # a killed run keeps every epoch it logged

    def log_model(self, files: list[Path]) -> None:
        """The model is already beside the event files (the output folder)."""

    def close(self) -> None:
        self.writer.close()

    def record(self) -> dict:
        return {"log_dir": self.log_dir}

    def place(self) -> str:
        return f"TensorBoard {self.log_dir}"


class MlflowTracker:
    """One MLflow run, through `MlflowClient` (no process-wide active run to leave behind)."""

    def __init__(self, tracking_uri: str, run_id: str):
        from mlflow.tracking import MlflowClient

        self.tracking_uri, self.run_id = tracking_uri, run_id
        self.client = MlflowClient(tracking_uri)

    @classmethod
    def start(cls, output: Path, hparams: dict) -> MlflowTracker:
        """A new run named after the output folder, in MLflow's store and experiment (module docstring)."""
        import mlflow
        from mlflow.entities import Param
        from mlflow.environment_variables import MLFLOW_EXPERIMENT_NAME
        from mlflow.exceptions import MlflowException

        tracking_uri = absolute_uri(mlflow.get_tracking_uri())  # MLFLOW_TRACKING_URI, else MLflow's default
        try:  # the store is opened here first: a bad URI or an old file store is refused before training
            client = mlflow.tracking.MlflowClient(tracking_uri)
            name = MLFLOW_EXPERIMENT_NAME.get() or DEFAULT_EXPERIMENT
            experiment = client.get_experiment_by_name(name)
            experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
            run = client.create_run(experiment_id, run_name=output.name, tags={"vidcls.output": str(output.resolve())})
        except MlflowException as error:
            raise VidclsError(f"--report-to mlflow: the MLflow store {tracking_uri} refused the run: {error}") from error
        client.log_batch(run.info.run_id, params=[Param(key, str(value)) for key, value in hparams.items()])
        return cls(tracking_uri, run.info.run_id)

    def reopen(self) -> MlflowTracker:
        """Mark the run running again (a resumed training)."""
        self.client.update_run(self.run_id, status="RUNNING")
        return self

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(key, value, now, step) for key, value in scalars.items()])

    def log_model(self, files: list[Path]) -> None:
        for path in files:
            if path.is_dir():
                self.client.log_artifacts(self.run_id, str(path), f"{MODEL_ARTIFACT}/{path.name}")
            else:
                self.client.log_artifact(self.run_id, str(path), MODEL_ARTIFACT)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)

    def record(self) -> dict:
        return {"tracking_uri": self.tracking_uri, "run_id": self.run_id}

    def place(self) -> str:
        return f"MLflow run {self.run_id} in {self.tracking_uri}"


def absolute_uri(uri: str) -> str:
    """A tracking URI that stays valid from another working directory (a plain path made absolute)."""
    return uri if ":" in uri else Path(uri).resolve().as_uri()


STARTERS = {"tensorboard": TensorBoardTracker.start, "mlflow": MlflowTracker.start}


class RunTrackers:
    """Every tracker of a run behind the one interface the loop calls; empty when reporting to none.

    Remembers the last step logged, so `vidcls eval` puts the test scores at the run's end.
    """

    def __init__(self, trackers: dict[str, Tracker] | None = None, step: int = 0):
        self.trackers = trackers or {}
        self.step = step

    @classmethod
    def start(cls, backends: list[str], output: Path, hparams: dict) -> RunTrackers:
        """New runs in ``backends``, the settings logged as hyper-parameters."""
        return cls({name: STARTERS[name](output, hparams) for name in backends})

    @classmethod
    def reopen(cls, record: dict | None, output: Path, resumed_step: int | None = None) -> RunTrackers:
        """The trackers a train_args.json ``tracking`` record names: a resumed run continues after
        ``resumed_step``; without it (an evaluation) the steps stay where the run ended."""
        if not record:
            return cls()
        step = record["step"] if resumed_step is None else resumed_step
        trackers: dict[str, Tracker] = {}
        if "tensorboard" in record:
            purge = None if resumed_step is None else resumed_step + 1
            trackers["tensorboard"] = TensorBoardTracker(output, record["tensorboard"]["log_dir"], purge)
        if "mlflow" in record:
            run = MlflowTracker(record["mlflow"]["tracking_uri"], record["mlflow"]["run_id"])
            trackers["mlflow"] = run.reopen() if resumed_step is not None else run
        return cls(trackers, step)

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def log_epoch(self, row: dict, step: int) -> None:
        """An epoch's row (metrics.jsonl) under the trackers' names, at optimizer step ``step``."""
        self.log_scalars({name: float(row[key]) for key, name in EPOCH_SCALARS.items() if row.get(key) is not None}, step)

    def log_scalars(self, scalars: dict[str, float], step: int | None = None) -> None:
        """Record ``scalars`` at ``step`` (default: the last step logged)."""
        self.step = self.step if step is None else step
        for tracker in self.trackers.values():
            tracker.log_scalars(scalars, self.step)

    def log_model(self, files: list[Path]) -> None:
        for tracker in self.trackers.values():
            tracker.log_model(files)

    def close(self) -> None:
        for tracker in self.trackers.values():
            tracker.close()

    def record(self) -> dict:
        """What train_args.json keeps (``tracking``): each tracker's place and the last step; {} for none."""
        if not self.trackers:
            return {}
        return {**{name: tracker.record() for name, tracker in self.trackers.items()}, "step": self.step}

    def describe(self) -> str:
        """Where the trackers log, for a person."""
        return "; ".join(tracker.place() for tracker in self.trackers.values())


def log_test_scores(model_dir: str | Path, result: EvaluationResult) -> str | None:
    """Add a test-split evaluation to the trackers the model's training reported to, at the run's
    last step; where it went, or None (another split, a folder without a tracked run, or a tracker
    out of reach here: not installed, its store moved, which is logged as a warning)."""
    args = Path(model_dir) / ARGS_FILE
    record = json.loads(args.read_text()).get("tracking") if args.is_file() and result.split == "test" else None
    if not record:
        return None
    scalars = {"test/accuracy": result.top1, "test/mean_class_accuracy": result.mean_class_accuracy,
               "test/videos": float(result.num_videos)}
    if result.top5 is not None:
        scalars["test/top5_accuracy"] = result.top5
    try:
        trackers = RunTrackers.reopen(record, Path(model_dir))
        trackers.log_scalars(scalars)
        trackers.close()
    except Exception as error:  # the scores are computed and saved: a tracker out of reach must not lose them
        logger.warning("warning: the test scores were not logged to the trackers of %s: %s", model_dir, error)
        return None
    return trackers.describe()
