"""The learning-rate schedule of a training run, and when the run ends.

An exact schedule (`--epochs`, `--steps`, or any schedule given through the API) is a linear
warm-up then a cosine decay to zero at its last step, and the run ends there. The default
schedule is the same plan, adjusted while it runs so that it ends when the work is done:

- **time budget**: from the second epoch on (the first decodes every video; later ones read the
  videos kept in memory), the plan is fitted to the epochs the budget holds at the speed of the
  recent epochs, so a run on a slower or busier machine ends on time with a full decay; when
  the machine gets faster again (another job ended) the end moves later, up to the plan;
- **plateau**: once the smoothed validation accuracy has not risen and the smoothed validation
  loss has not fallen by `PLATEAU_LOSS_DELTA` for `plateau_patience` epochs, the decay is
  shortened to a tail of `TAIL_FRACTION` of the steps run so far: the low learning rates at the
  end still settle the weights, and the epochs a user cannot see the difference of are skipped.

A change of the end never jumps: the learning rate decays from where it is to zero at the new end
(during the warm-up, the warm-up is fitted to the new plan instead). The `Schedule` is the
`LambdaLR` factor, and LambdaLR saves a callable object's attributes in its state dict, so a
checkpoint holds the cuts made so far and why, and a resumed run continues the same plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Minutes the default schedule aims to end within, on the machine it runs on (data scan, training
# and validation; saving the model adds seconds). 0 or None: no budget.
DEFAULT_TIME_BUDGET_MINUTES = 9.0
# Steps without a better smoothed validation accuracy or loss before the decay is shortened (at
# least PLATEAU_MIN_EPOCHS epochs, so a large dataset's few long epochs are not cut on noise).
PLATEAU_STEPS = 400
PLATEAU_MIN_EPOCHS = 4
PLATEAU_LOSS_DELTA = 0.05  # a fall of the smoothed validation loss by less than this share is no progress
TAIL_FRACTION = 0.25  # the shortened decay lasts this share of the steps run before it
MIN_TAIL_EPOCHS = 2


def cosine(progress: float) -> float:
    """1 at progress 0, 0 at progress 1, half a cosine in between."""
    return 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


@dataclass
class Schedule:
    """Warm-up and cosine decay to zero at `end_step`, with the cuts an adaptive run made.

    `adaptive` runs apply the time budget and the plateau rule after each epoch (`after_epoch`);
    `reason` says why the run ends where it does, for the log, train_args.json and the model card.
    """

    steps_per_epoch: int
    warmup_steps: int
    end_step: int
    reason: str
    warmup_ratio: float  # of the planned steps: TrainConfig.warmup_ratio
    planned_epochs: int = 0  # the plan before any cut
    adaptive: bool = False
    budget_seconds: float | None = None
    plateau_patience: int = PLATEAU_MIN_EPOCHS
    cut_step: int | None = None  # where the end last moved; None: the plan's own cosine
    cut_factor: float = 1.0  # the factor at cut_step, from which the decay to the new end starts
    plateau_epoch: int | None = None

    @classmethod
    def plan(
        cls, epochs: int, steps_per_epoch: int, warmup_ratio: float, reason: str, adaptive: bool = False,
        budget_minutes: float | None = None,
    ) -> Schedule:
        """The schedule of ``epochs`` epochs; with ``adaptive``, one that may end earlier (module docstring)."""
        total = epochs * steps_per_epoch
        return cls(
            steps_per_epoch=steps_per_epoch, warmup_steps=max(1, int(total * warmup_ratio)), end_step=total,
            reason=reason, planned_epochs=epochs, warmup_ratio=warmup_ratio, adaptive=adaptive,
            budget_seconds=60 * budget_minutes if adaptive and budget_minutes else None,
            plateau_patience=max(PLATEAU_MIN_EPOCHS, math.ceil(PLATEAU_STEPS / steps_per_epoch)),
        )

    def __call__(self, step: int) -> float:
        """The learning-rate factor of optimizer step ``step`` (LambdaLR's convention)."""
        if self.cut_step is not None and step >= self.cut_step:
            return self.cut_factor * cosine((step - self.cut_step) / max(1, self.end_step - self.cut_step))
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        return cosine((step - self.warmup_steps) / max(1, self.end_step - self.warmup_steps))

    @property
    def end_epoch(self) -> int:
        """The epoch after which the run ends."""
        return math.ceil(self.end_step / self.steps_per_epoch)

    def replan(self, epoch: int, end_epoch: int, reason: str) -> None:
        """End after ``end_epoch`` instead, continuing the decay from where it is after ``epoch``."""
        step, end = epoch * self.steps_per_epoch, end_epoch * self.steps_per_epoch
        if self.cut_step is None and step < self.warmup_steps:  # still warming up: a shorter warm-up and decay
            self.warmup_steps = max(int(end * self.warmup_ratio), step + 1)
        else:
            self.cut_factor, self.cut_step = self(step), step
        self.end_step, self.reason = end, reason

    def after_epoch(self, epoch: int, history: list[dict], elapsed_seconds: float) -> str | None:
        """Apply the time budget and the plateau rule after ``epoch``; a line for the log when the plan changed.

        ``history`` holds every epoch's row so far (with ``wall_seconds`` and, with a validation
        split, the smoothed ``val_accuracy_smoothed`` and ``val_loss_smoothed``).
        """
        if not self.adaptive or epoch >= self.end_epoch:
            return None
        changed = None
        if self.plateau_epoch is None and epoch * self.steps_per_epoch >= self.warmup_steps and plateaued(
            history, self.plateau_patience
        ):
            self.plateau_epoch = epoch
            end = min(self.end_epoch, epoch + max(MIN_TAIL_EPOCHS, math.ceil(TAIL_FRACTION * epoch)))
            if end < self.end_epoch:
                self.replan(epoch, end, f"validation plateau: no better smoothed accuracy or loss for "
                                         f"{self.plateau_patience} epochs at epoch {epoch}; the decay was shortened")
                changed = f"validation has not improved for {self.plateau_patience} epochs: ending after epoch {end}"
        if self.budget_seconds and epoch >= 2:
            # Never past the plan, nor past the tail a plateau set.
            longest = self.end_epoch if self.plateau_epoch is not None else self.planned_epochs
            end = min(longest, epoch + epochs_within(self.budget_seconds - elapsed_seconds, recent_epoch_seconds(history)))
            # Sooner as soon as the time asks for it; later only by 2 epochs or more, so noise does not see-saw it.
            if end < self.end_epoch or end >= min(longest, self.end_epoch + 2) > self.end_epoch:
                minutes = self.budget_seconds / 60
                self.replan(epoch, end, f"time budget: {minutes:g} min at the measured speed; the decay was fitted to it")
                changed = f"time budget {minutes:g} min: ending after epoch {end} (of the {self.planned_epochs} planned)"
        return changed

    def expected_seconds(self, history: list[dict]) -> float:
        """Wall seconds the whole run will take, at the speed of the recent epochs (within the budget)."""
        last = history[-1]
        projected = last["elapsed_seconds"] + (self.end_epoch - last["epoch"]) * recent_epoch_seconds(history)
        return min(projected, self.budget_seconds) if self.budget_seconds else projected


def recent_epoch_seconds(history: list[dict], window: int = 3) -> float:
    """Wall seconds of one epoch (training, validation, saving), from the last ``window`` epochs after the first."""
    recent = [row["wall_seconds"] for row in history[1:][-window:]] or [history[0]["wall_seconds"]]
    return sum(recent) / len(recent)


def epochs_within(seconds: float, seconds_per_epoch: float) -> int:
    """Whole epochs that fit in ``seconds`` (none when the time is spent)."""
    return max(0, math.floor(seconds / seconds_per_epoch)) if seconds_per_epoch > 0 else 0


def plateaued(history: list[dict], patience: int, loss_delta: float = PLATEAU_LOSS_DELTA) -> bool:
    """True when, over the last ``patience`` epochs, the smoothed validation accuracy never rose above
    its best before them and the smoothed validation loss never fell ``loss_delta`` below its best.

    Both must stall: the accuracy of a few dozen validation videos saturates long before the model
    stops improving, which the loss (the probability given to the right class) still shows.
    False without enough epochs or without validation scores.
    """
    rows = [row for row in history if not math.isnan(row.get("val_loss_smoothed", math.nan))]
    if len(rows) <= patience:
        return False
    before, recent = rows[:-patience], rows[-patience:]
    best_accuracy = max(row["val_accuracy_smoothed"] for row in before)
    best_loss = min(row["val_loss_smoothed"] for row in before)
    accuracy_rose = max(row["val_accuracy_smoothed"] for row in recent) > best_accuracy
    loss_fell = min(row["val_loss_smoothed"] for row in recent) < best_loss * (1 - loss_delta)
    return not (accuracy_rose or loss_fell)
