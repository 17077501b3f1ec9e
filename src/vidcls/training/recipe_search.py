"""`vidcls train DATA` without ``--model``: try the recipes that can win within the time budget, keep
the better on the validation split.

Two candidates, in this order:

1. **pretrained features**: the pretrained model's (Kinetics-400 I3D) whole-video features and a
   regularised head fitted on them (`training.linear_probe`): minutes at most, and on real footage
   the stronger (benchmarks/real.md). Left out, in one log line, when the weights cannot be had
   (offline and not cached), or when computing every video's features would take more than
   `FEATURES_BUDGET_SHARE` of the budget (timed on the first videos, before the rest are computed;
   the mirror images are left out first where that is enough).
2. **`motion` from scratch** (`training.loop`), with what is left of the budget: on synthetic
   motion, which no pretrained feature describes, the stronger. Left out when the features'
   validation accuracy leaves it no room for a clear win (below). It races the features: once it has
   spent `RACE_SHARE` of its budget (or of its epochs) and run `RACE_MIN_EPOCHS` epochs, it stops
   when its best validation accuracy is still `RACE_MARGIN` or more below theirs (on synthetic
   motion it passes them within its first epochs; on real footage it would not catch up).

The pretrained features are kept unless `motion` wins clearly: by `RACE_MARGIN` of the validation
accuracy and by at least `CLEAR_WIN_VIDEOS` videos. `motion`'s score there is the mean validation
accuracy of its last `SETTLED_EPOCHS` epochs, not its best: the best of hundreds of epochs on a few
validation videos is the luckiest of them (a Weizmann fold: best 1.000, last epochs 0.8-0.9, test
0.767 against the features' 0.9). They generalise better from a few dozen videos a
class (benchmarks/transfer.md), and a validation split of one actor's 10 videos cannot tell recipes
one video apart (benchmarks/real.md: on a Weizmann fold `motion` won validation by one video, 0.800
against 0.700, and lost the test split). The output folder holds the kept model
only, an ordinary model folder; train_args.json (``search``), the log and the model card list
every candidate with its validation accuracy, its cost in seconds and what became of it.
train_args.json's other settings are the kept recipe's, so `vidcls train DATA --resume` continues
the `motion` run of a search (interrupted, or kept) as any run, without comparing again; a kept
features model has nothing to resume.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from vidcls.training import distributed
from vidcls.errors import VidclsError
from vidcls.models.pretrained import I3D_KINETICS400, WeightsError
from vidcls.publish.model_card import add_search_section
from vidcls.training.config import SCRATCH_PRESET, TrainConfig
from vidcls.training.linear_probe import FeaturesTooSlow, fit_probe, save_probe
from vidcls.training.loop import ARGS_FILE, TrainResult, check_output, prepare_output, train_all_layers, training_data
from vidcls.training.schedule import DEFAULT_TIME_BUDGET_MINUTES

logger = logging.getLogger(__name__)

# The pretrained features run whenever their estimated cost fits the whole budget: on real footage
# they are the recipe that wins, even where they leave `motion` little time.
FEATURES_BUDGET_SHARE = 1.0
# The race (module docstring): successive halving's rule, with one rung.
RACE_SHARE, RACE_MIN_EPOCHS, RACE_MARGIN = 1 / 3, 3, 0.1
CLEAR_WIN_VIDEOS = 2  # with RACE_MARGIN, what `motion` must win validation by to be kept (module docstring)
SETTLED_EPOCHS = 5  # `motion`'s validation score: the mean over its last epochs (module docstring)
FEATURES, MOTION = "pretrained features", f"{SCRATCH_PRESET} from scratch"


@dataclass
class Candidate:
    """One recipe the search considered: its validation accuracy and cost, or why it was left out."""

    recipe: str
    model: str
    val_accuracy: float | None = None
    best_val_accuracy: float | None = None  # `motion`'s best epoch, beside its settled score
    seconds: float = 0.0
    outcome: str = "tried"
    stopped: str | None = None  # why a run was ended before its schedule did (the race)

    def summary(self) -> str:
        if self.outcome.startswith(("skipped", "unavailable")):
            return f"{self.recipe} ({self.model}): {self.outcome}"
        accuracy = "n/a" if self.val_accuracy is None else f"{self.val_accuracy:.3f}"
        if self.best_val_accuracy is not None:
            accuracy += f" (mean of its last {SETTLED_EPOCHS} epochs; best {self.best_val_accuracy:.3f})"
        stopped = f", stopped early: {self.stopped}" if self.stopped else ""
        return f"{self.recipe} ({self.model}): val accuracy {accuracy} in {self.seconds:.0f} s{stopped}"


def search(config: TrainConfig, processes: distributed.Processes) -> TrainResult:
    """Run the search (module docstring) into ``config.output``."""
    if processes.world_size > 1:
        raise VidclsError("the recipe search runs in one process; pass --model to train data-parallel with torchrun")
    started = time.perf_counter()
    output = Path(config.output)
    check_output(output, resume=False, overwrite=config.overwrite)
    budget = 60 * (DEFAULT_TIME_BUDGET_MINUTES if config.time_budget is None else config.time_budget)
    index = training_data(config, is_main_process=True)
    features, probe = _try_features(config, index, processes, budget)
    motion = Candidate(MOTION, SCRATCH_PRESET)
    motion_result = None
    left = budget - (time.perf_counter() - started)
    val_videos = len(index.splits.get("val", []))
    if probe and not _can_win_clearly(probe.fit.val_accuracy, val_videos):
        motion.outcome = (f"skipped: the pretrained features' validation accuracy ({probe.fit.val_accuracy:.3f}) "
                          "leaves it no room for a clear win")
    elif probe and budget and left <= 0:
        motion.outcome = "skipped: the time budget is spent"
    else:
        motion_config = dataclasses.replace(config, model=SCRATCH_PRESET, leakage_check=False)  # checked above
        if budget and not (config.epochs or config.steps):  # 0 would mean no budget: at least a second
            motion_config.time_budget = max(left, 1.0) / 60
        motion_started = time.perf_counter()
        race = _race(motion, probe.fit.val_accuracy if probe else None, motion_config)
        motion_result = train_all_layers(motion_config, processes, race)
        motion.val_accuracy, motion.seconds = _settled_accuracy(motion_result.history), time.perf_counter() - motion_started
        motion.best_val_accuracy = motion_result.best_val_accuracy
    logger.info("recipe search: %s", motion.summary())
    record = search_choice(features, motion, val_videos, budget)
    kept = features if record["kept"] == FEATURES else motion
    if kept is features:
        prepare_output(output, resume=False)  # the motion run's files, if it ran
        result = save_probe(probe, _features_config(config), index, processes.device)
    else:
        result = motion_result
    logger.info("recipe search: kept %s: %s", kept.recipe, record["why"])
    _write_record(output, record)
    add_search_section(output, record)
    return dataclasses.replace(result, search=record)


def _settled_accuracy(history: list[dict]) -> float | None:
    """The mean validation accuracy of the last `SETTLED_EPOCHS` epochs that were validated."""
    scores = [row["val_accuracy"] for row in history if row.get("val_accuracy") is not None]
    return sum(scores[-SETTLED_EPOCHS:]) / len(scores[-SETTLED_EPOCHS:]) if scores else None


def _race(motion: Candidate, target: float | None, config: TrainConfig):
    """The loop's stop rule that races motion against the features' validation accuracy ``target``
    (module docstring); None when there is nothing to race or no budget or epoch count to take a share of."""
    if target is None or not (config.time_budget or config.epochs):
        return None

    def rule(state) -> str | None:
        elapsed = state.history[-1].get("elapsed_seconds", 0.0)
        spent = state.epoch / config.epochs if config.epochs else elapsed / (60 * config.time_budget)
        best = max((row.get("val_accuracy") or 0.0 for row in state.history), default=0.0)
        if state.epoch < RACE_MIN_EPOCHS or spent < RACE_SHARE or best > target - RACE_MARGIN:
            return None
        motion.stopped = (f"after {state.epoch} epochs ({spent:.0%} of its budget) its best validation accuracy "
                          f"{best:.3f} was {RACE_MARGIN} or more below the pretrained features' {target:.3f}")
        return f"the recipe search's race: {motion.stopped}"

    return rule


def _features_config(config: TrainConfig) -> TrainConfig:
    """The run settings of the pretrained candidate: an explicit `--freeze-backbone` run of its model."""
    return dataclasses.replace(config, model=config.search_pretrained or I3D_KINETICS400, freeze_backbone=True)


def _try_features(config: TrainConfig, index, processes, budget: float):
    """The pretrained candidate and its fit, or the candidate with why it was left out (and None)."""
    features_config = _features_config(config)
    candidate = Candidate(FEATURES, features_config.model)
    started = time.perf_counter()
    try:
        probe = fit_probe(features_config, index, processes.device, FEATURES_BUDGET_SHARE * budget or None)
    except WeightsError as error:
        candidate.outcome = f"unavailable: {error}"
        logger.info("recipe search: %s", candidate.summary())
        return candidate, None
    except FeaturesTooSlow as error:
        candidate.outcome = f"skipped: {error} ({FEATURES_BUDGET_SHARE:.0%} of the time budget)"
        candidate.seconds = time.perf_counter() - started
        logger.info("recipe search: %s", candidate.summary())
        return candidate, None
    candidate.val_accuracy, candidate.seconds = probe.fit.val_accuracy, time.perf_counter() - started
    logger.info("recipe search: %s", candidate.summary())
    return candidate, probe


def search_choice(features: Candidate, motion: Candidate, val_videos: int, budget: float = 0.0) -> dict:
    """The search's record (`_record`) with the candidate kept: `motion` only on a clear win over the
    pretrained features (module docstring); one that was not tried is never kept over one that was."""
    if motion.outcome != "tried":
        kept = features
    elif features.outcome != "tried":
        kept = motion
    else:
        kept = motion if _clear_win(motion, features, val_videos) else features
    kept.outcome = "kept"
    return _record(features, motion, kept, budget)


def _can_win_clearly(features_accuracy: float | None, val_videos: int) -> bool:
    """Whether a validation accuracy leaves `motion` room to beat it clearly (`_clear_win`)."""
    if features_accuracy is None:
        return True
    return features_accuracy + RACE_MARGIN <= 1 + 1e-9 and round((1 - features_accuracy) * val_videos) >= CLEAR_WIN_VIDEOS


def _clear_win(motion: Candidate, features: Candidate, val_videos: int) -> bool:
    """Whether `motion`'s validation accuracy beats the features' by `RACE_MARGIN` and `CLEAR_WIN_VIDEOS` videos."""
    if motion.val_accuracy is None or features.val_accuracy is None:
        return False
    lead = motion.val_accuracy - features.val_accuracy
    return lead >= RACE_MARGIN - 1e-9 and round(lead * val_videos) >= CLEAR_WIN_VIDEOS


def _record(features: Candidate, motion: Candidate, kept: Candidate, budget: float) -> dict:
    """What train_args.json and the model card say about the search."""
    other = motion if kept is features else features
    if other.outcome != "tried":  # an unavailable candidate's reason was logged once already
        why = f"the only recipe tried ({other.recipe} {other.outcome if other.outcome.startswith('skipped') else 'unavailable'})"
    elif kept.val_accuracy is None and other.val_accuracy is None:
        why = "no validation videos to compare them on: the pretrained features are kept, as on a tie"
    elif kept.val_accuracy == other.val_accuracy:
        why = f"validation accuracy tied at {kept.val_accuracy:.3f}: the pretrained features are kept on a tie"
    elif kept is features and (other.val_accuracy or 0.0) > (kept.val_accuracy or 0.0):
        why = (f"{other.recipe}'s validation accuracy ({other.val_accuracy:.3f} against {kept.val_accuracy:.3f}) "
               f"is not a clear win (by {RACE_MARGIN} and {CLEAR_WIN_VIDEOS} videos): the pretrained features are kept")
    else:
        why = f"higher validation accuracy ({kept.val_accuracy:.3f} against {other.val_accuracy or 0:.3f})"
    return {
        "kept": kept.recipe, "why": why, "budget_minutes": budget / 60,
        "tried": [dataclasses.asdict(candidate) for candidate in (features, motion)],
    }


def _write_record(output: Path, record: dict) -> None:
    path = output / ARGS_FILE
    saved = json.loads(path.read_text())
    saved["search"] = record
    path.write_text(json.dumps(saved, indent=2))
