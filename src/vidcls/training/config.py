"""Every setting of a training run: its default, its help text and what kind of setting it is.

Torch-free, so `vidcls train --help` reads its defaults and help from here: the CLI, the Python
API (`vidcls.train`), `train_args.json`, a resume and the model card's reproduce command all
take them from this one dataclass. What kind of setting a field is lives in its metadata:

- ``runtime``: where the run happens (device, workers, ...); a resume takes it from the new call
  and keeps every other setting of the original run.
- ``reproduced=False``: which run it is (data, output, resume, ...), not how it computes; the
  model card's command names the folders itself and leaves the rest out.
- ``cli=False``: no `vidcls train` option; a run that changed one is reproduced in Python.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from vidcls.data.clip_spec import ClipSpec
from vidcls.data.discovery import TEST_RATIO, VAL_RATIO
from vidcls.training.schedule import DEFAULT_TIME_BUDGET_MINUTES

SCRATCH_PRESET = "motion"  # the preset the default recipe search trains from scratch
DEFAULT_FINE_TUNE_EPOCHS = 10
MIN_SCRATCH_STEPS = 3000  # the default plan from scratch, in optimizer steps (ended sooner by the schedule)
MAX_AUTO_EPOCHS = 300
ARGS_FILE = "train_args.json"  # the run's settings as resolved, beside the model
NEW_WEIGHTS_LR = 1e-3  # peak learning rate of weights that start random: a preset, a pretrained model's new head
FINE_TUNE_LR = 5e-5  # peak learning rate to fine-tune a whole pretrained transformers model


def setting(
    default: Any = MISSING, help: str = "", *, runtime: bool = False, reproduced: bool = True, cli: bool = True
) -> Any:
    """A `TrainConfig` field with its help text and kind (see the module docstring); no default: required."""
    return field(default=default, metadata={"help": help, "runtime": runtime, "reproduced": reproduced, "cli": cli})


@dataclass
class TrainConfig:
    """Every setting of a training run; saved as `train_args.json` beside the model."""

    data: str = setting(help="Dataset folder (split or flat layout).", reproduced=False)
    output: str = setting(help="Model directory to write.", reproduced=False)
    model: str | None = setting(
        None, "Preset (motion: a small motion CNN; tiny, base: VideoMAE), pretrained model "
        "(i3d-kinetics400: Kinetics-400 I3D), local model directory or hub id (default: a search within "
        f"--time-budget: the pretrained model's features with a fitted head, and the `{SCRATCH_PRESET}` preset from "
        "scratch; the better on the validation split is kept).")
    epochs: int | None = setting(
        None, f"An exact schedule of N epochs (default: {DEFAULT_FINE_TUNE_EPOCHS} to fine-tune; from scratch, enough for "
        f"{MIN_SCRATCH_STEPS:,} optimizer steps, ended sooner by --time-budget or a validation plateau).")
    steps: int | None = setting(None, "An exact schedule of N optimizer steps, rounded up to whole epochs.")
    time_budget: float | None = setting(
        None, "Minutes the default schedule ends within, at the speed measured in its first epochs "
        f"(default: {DEFAULT_TIME_BUDGET_MINUTES:g}; 0: none). Not with --epochs or --steps.")
    batch_size: int = setting(8, "Clips per optimizer step, over all processes (torchrun) and --grad-accum micro-batches.")
    grad_accum: int = setting(
        1, "Split each step's batch into N micro-batches (less memory, same step).", runtime=True)
    lr: float | None = setting(
        None, f"Peak learning rate (default: {NEW_WEIGHTS_LR:g} for presets and a new head, {FINE_TUNE_LR:g} to fine-tune).")
    weight_decay: float = setting(0.05, cli=False)
    warmup_ratio: float = setting(0.1, cli=False)
    num_frames: int | None = setting(None, "Frames per clip (default: the model's).")
    sample_rate: int | None = setting(
        None, f"Dense sampling: take every n-th frame (default: the model's, else {ClipSpec.sample_rate}).")
    sampling: str | None = setting(
        None, "segment (default): one frame per equal part of the video, as transformers.pipeline reads; "
        "dense: a run of frames every --sample-rate.")
    label_smoothing: float = setting(0.1, "Label smoothing of the loss.")
    clips_per_video: int = setting(1, "Random clips of each video per epoch, decoded in one pass, side by side in a batch.")
    workers: int | None = setting(
        None, "Data loader processes (default: as many as feed a GPU; on the CPU one per 4 cores, at least 1).", runtime=True)
    seed: int = setting(0, "Seed of the split, the initialisation and every random draw.")
    flip: bool = setting(True, "Random horizontal flip (turn off when left/right matters).")
    val_ratio: float = setting(VAL_RATIO, cli=False)
    test_ratio: float = setting(TEST_RATIO, cli=False)
    early_stopping: int | None = setting(None, "Stop after N epochs without better val accuracy.")
    resume: bool = setting(False, "Continue the run in OUTPUT from its last checkpoint.", runtime=True, reproduced=False)
    overwrite: bool = setting(False, "Replace a previous run in OUTPUT.", runtime=True, reproduced=False)
    device: str | None = setting(None, runtime=True)  # its option is the one every command shares
    # Warn, before training, about held-out videos with a copy in train (`vidcls.audit`); its option
    # (--leakage-check on|off) is the one `vidcls data`, `train` and `eval` share.
    leakage_check: bool = setting(True, runtime=True, reproduced=False)
    progress: bool = setting(True, cli=False, runtime=True, reproduced=False)
    report_to: str = setting(
        "none", "Also send metrics, settings and later test scores to: tensorboard (event files in OUTPUT/runs), "
        "mlflow (MLFLOW_TRACKING_URI, else mlflow.db here), both comma-separated, all (those installed) or none.",
        reproduced=False)
    freeze_backbone: bool = setting(
        False, "Pretrained models (i3d-kinetics400): fit the new head only (a regularised logistic regression) "
        "on whole-video features computed once.")
    # The search's pretrained candidate: a pretrained model's name or a local I3D model folder (tests
    # point it at a small stand-in); None: `models.pretrained.I3D_KINETICS400`.
    search_pretrained: str | None = setting(None, cli=False, reproduced=False)

    @staticmethod
    def help(name: str) -> str:
        """The help text of a setting, as `vidcls train --help` shows it."""
        return _field(name).metadata["help"]


def _field(name: str) -> Field:
    return next(f for f in fields(TrainConfig) if f.name == name)


def names_where(kind: str, value: bool = True) -> tuple[str, ...]:
    """The settings whose metadata ``kind`` ("runtime", "reproduced", "cli") is ``value``."""
    return tuple(f.name for f in fields(TrainConfig) if f.metadata[kind] is value)
