"""`RunState`: where a training run stands after each epoch, and the rule that picks the epoch kept.

The checkpoint saves it and a resume restores it; the model card and `TrainResult` read it. Torch-free.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field, fields

logger = logging.getLogger(__name__)

# Epochs whose validation accuracy is averaged to pick the epoch to keep. On a few dozen
# validation videos one epoch's accuracy jumps by a video or two, and a lone lucky epoch is
# rarely the best model (benchmarks/quality.md compares the two rules on cluttered motion).
BEST_EPOCH_WINDOW = 3


def smoothed(history: list[dict], key: str = "val_accuracy", window: int = BEST_EPOCH_WINDOW) -> float:
    """Mean validation accuracy (or another ``key``) of the last ``window`` epochs of ``history``
    (fewer at the start; epochs without a readable validation video left out); NaN when there are none."""
    recent = [row[key] for row in history[-window:] if not math.isnan(row.get(key, math.nan))]
    return sum(recent) / len(recent) if recent else math.nan


@dataclass
class RunState:
    """A run's epoch bookkeeping: epochs done, the best (kept) epoch, epochs since it, every epoch's
    row, and once the run has ended, why and how many epochs were planned."""

    epoch: int = 0
    best_val_accuracy: float | None = None
    best_epoch: int = 0
    stale_epochs: int = 0  # epochs since the best one (early stopping reads it)
    history: list[dict] = field(default_factory=list)
    stopped: str | None = None
    planned_epochs: int | None = None

    def as_checkpoint(self) -> dict:
        """The fields as the checkpoint stores them, beside the weights and the optimizer."""
        return asdict(self)

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> RunState:
        return cls(**{f.name: checkpoint[f.name] for f in fields(cls) if f.name in checkpoint})

    def record(self, row: dict) -> bool:
        """Add the epoch's row and log it (debug: the console shows a summary, `training.progress`); True
        when it is the best so far.

        The best epoch has the highest validation accuracy averaged over it and the epochs just
        before it (`smoothed`); on a tie the later one, trained longer, is kept. Every process of
        a distributed run records the same rows (losses are summed and validation scores gathered
        over processes), so all agree on the best epoch and on early stopping.
        """
        accuracy = row.get("val_accuracy")
        history = self.history + [row]
        if accuracy is None:  # without validation data every epoch counts as best: the output holds the last one
            improved = True
        else:
            row["val_accuracy_smoothed"] = score = smoothed(history)
            if "val_loss" in row:  # the plateau rule reads it (vidcls.training.schedule)
                row["val_loss_smoothed"] = smoothed(history, "val_loss")
            first = self.best_val_accuracy is None
            best = math.nan if first else smoothed([r for r in history if r["epoch"] <= self.best_epoch])
            improved = first or (not math.isnan(accuracy) and (math.isnan(best) or score >= best))
        row["best"] = improved
        self.epoch, self.history = row["epoch"], history
        if improved:
            self.best_val_accuracy, self.best_epoch, self.stale_epochs = accuracy, row["epoch"], 0
        else:
            self.stale_epochs += 1
        logger.debug("epoch %d: %s", row["epoch"], json.dumps(row))
        return improved
