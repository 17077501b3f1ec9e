"""What `vidcls train` shows while it runs: one progress bar, and the schedule said only when it matters.

On a terminal the run is one tqdm bar over its optimizer steps: epoch i/N, the recent training
loss, the last validation accuracy and the time left (from the schedule's estimate, which knows
the time budget and the speed of the recent epochs). Log lines (warnings, the schedule) print
above it. Where stderr is not a terminal (a log file, CI), the bar is off and each epoch is one
short log line instead. The full row of every epoch is in `metrics.jsonl` and the trackers.

The schedule's expected end is said once, after the second epoch (the first at the speed of
videos kept in memory), and again only on a material change of the expected end
(`Estimate.differs_materially`): a time-budget estimate whose last epoch wobbles with the
machine's speed is not news; a plateau cut, or a machine that got much slower, is.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import deque
from dataclasses import dataclass

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from vidcls.training.schedule import Schedule

logger = logging.getLogger(__name__)

# An estimate is said again when the expected end moves by more than this share of the announced
# run's duration and by more than MATERIAL_SECONDS.
MATERIAL_SHARE = 0.1
MATERIAL_SECONDS = 60.0
FIRST_ESTIMATE_EPOCH = 2  # the first epoch decodes every video; the second runs at the speed of the rest
LOSS_WINDOW = 20  # steps averaged for the loss the bar shows


@dataclass(frozen=True)
class Estimate:
    """When a run is expected to end: its last epoch, and its wall seconds in all."""

    end_epoch: int
    total_seconds: float

    def differs_materially(self, later: Estimate) -> bool:
        """True when ``later`` moves the expected end by more than MATERIAL_SHARE of this run's
        duration and more than MATERIAL_SECONDS.

        Time, not epochs: under a time budget the end epoch follows the machine's speed from epoch
        to epoch while the end stays at the budget, which is what a person plans around; a plateau
        cut or a much slower machine moves the end itself.
        """
        moved = abs(later.total_seconds - self.total_seconds)
        return moved > max(MATERIAL_SECONDS, MATERIAL_SHARE * self.total_seconds)


def duration(seconds: float) -> str:
    """Seconds for a person: "40 s" under two minutes, else "3.5 min"."""
    seconds = max(0.0, seconds)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class ScheduleNews:
    """Says the schedule's expected end once, then only on a material change."""

    def __init__(self) -> None:
        self.said: Estimate | None = None

    def after_epoch(self, schedule: Schedule, history: list[dict], change: str | None) -> str | None:
        """The line to log after the epoch just run, or None; ``change`` is the schedule's own
        account of a change it made in this epoch (`Schedule.after_epoch`)."""
        row = history[-1]
        if row["epoch"] < FIRST_ESTIMATE_EPOCH or row["epoch"] >= schedule.end_epoch:
            return None
        estimate = Estimate(schedule.end_epoch, schedule.expected_seconds(history))
        if self.said is not None and not self.said.differs_materially(estimate):
            return None
        self.said = estimate
        budget = f", within the time budget of {schedule.budget_seconds / 60:g} min" if schedule.budget_seconds else ""
        return (
            f"{change + '; ' if change else ''}expected duration: about {estimate.total_seconds / 60:.1f} min in all "
            f"({row['elapsed_seconds'] / 60:.1f} so far), at most {estimate.end_epoch} epochs{budget}"
        )


class RunProgress:
    """The console of one run (module docstring): a bar on a terminal, else a line per epoch; used
    as a context, during which log lines print above the bar.

    ``enabled`` False (other processes of a distributed run, ``progress=False``) shows neither.
    """

    def __init__(self, enabled: bool, steps_per_epoch: int, end_epoch: int, done_epochs: int = 0):
        self.steps_per_epoch, self.end_epoch, self.enabled = steps_per_epoch, end_epoch, enabled
        self.losses: deque[float] = deque(maxlen=LOSS_WINDOW)
        self.epoch, self.val_accuracy, self.ends_at = done_epochs + 1, None, None
        # disable=None: no bar when stderr is not a terminal, where every redraw would be a line of the log.
        self.bar = tqdm(
            total=end_epoch * steps_per_epoch, initial=done_epochs * steps_per_epoch, disable=None if enabled else True,
            desc=f"epoch {self.epoch}/{end_epoch}", bar_format="{desc} |{bar}| {n_fmt}/{total_fmt} steps{postfix}",
            dynamic_ncols=True,
        )
        self._describe()

    def __enter__(self) -> RunProgress:
        self._context = contextlib.ExitStack()
        if not self.bar.disable:
            self._context.enter_context(logging_redirect_tqdm())
        self._context.callback(self.bar.close)
        return self

    def __exit__(self, *exc_info) -> None:
        self._context.close()

    @property
    def per_epoch_lines(self) -> bool:
        """One log line per epoch instead of the bar."""
        return self.enabled and self.bar.disable

    def step(self, loss: float) -> None:
        """One optimizer step done, at ``loss``."""
        self.losses.append(loss)
        self.bar.update(1)
        self._describe()

    def epoch_done(self, row: dict, end_epoch: int, seconds_left: float) -> None:
        """The epoch's row is in; the run now ends after ``end_epoch``, about ``seconds_left`` from now."""
        self.val_accuracy = row.get("val_accuracy")
        self.ends_at = time.monotonic() + seconds_left
        if end_epoch != self.end_epoch:
            self.end_epoch, self.bar.total = end_epoch, end_epoch * self.steps_per_epoch
        if self.per_epoch_lines:
            logger.info("epoch %d/%d: %s", row["epoch"], end_epoch, self._figures(row["train_loss"]))
        self.epoch = row["epoch"] + 1
        self._describe()

    def _figures(self, loss: float) -> str:
        """Loss, validation accuracy and time left, each once it is known."""
        figures = [] if math.isnan(loss) else [f"loss {loss:.3f}"]
        if self.val_accuracy is not None and not math.isnan(self.val_accuracy):
            figures.append(f"val accuracy {self.val_accuracy:.3f}")
        if self.ends_at is not None:
            figures.append(f"{duration(self.ends_at - time.monotonic())} left")
        return ", ".join(figures)

    def _describe(self) -> None:
        if self.bar.disable:
            return
        self.bar.set_description_str(f"epoch {min(self.epoch, self.end_epoch)}/{self.end_epoch}", refresh=False)
        loss = sum(self.losses) / len(self.losses) if self.losses else math.nan
        self.bar.set_postfix_str(self._figures(loss))
