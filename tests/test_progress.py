"""The console of a training run: the schedule said once and on material changes only, the per-epoch line."""

from __future__ import annotations

import logging

from vidcls.training.progress import Estimate, RunProgress, ScheduleNews
from vidcls.training.schedule import Schedule


def _news_over(schedule: Schedule, ends: list[int], seconds: list[float]) -> list[str | None]:
    """What `ScheduleNews` says after each epoch when the schedule's end moves to ``ends`` (one per epoch)."""
    news, said, history = ScheduleNews(), [], []
    for epoch, (end, epoch_seconds) in enumerate(zip(ends, seconds, strict=True), 1):
        history.append({"epoch": epoch, "wall_seconds": epoch_seconds,
                        "elapsed_seconds": epoch_seconds + (history[-1]["elapsed_seconds"] if history else 0.0)})
        moved = end * schedule.steps_per_epoch != schedule.end_step
        schedule.end_step = end * schedule.steps_per_epoch
        said.append(news.after_epoch(schedule, history, f"ending after epoch {end}" if moved else None))
    return said


def test_a_wobbling_time_budget_estimate_is_said_once():
    schedule = Schedule.plan(89, 10, 0.1, "planned", adaptive=True, budget_minutes=9)
    # The budget's estimate moves by an epoch or two nearly every epoch, as on a busy machine.
    ends = [89, 76, 77, 76, 78, 77, 76, 78, 77, 76, 77, 78]
    said = _news_over(schedule, ends, [7.0] * len(ends))
    assert said[0] is None  # the first epoch decodes every video: not the speed to announce
    assert said[1] is not None and "ending after epoch 76" in said[1] and "at most 76 epochs" in said[1]
    assert said[2:] == [None] * (len(ends) - 2)


def test_a_plateau_cut_or_a_much_slower_machine_is_said_again():
    schedule = Schedule.plan(89, 10, 0.1, "planned", adaptive=True, budget_minutes=9)
    said = _news_over(schedule, [89, 76, 77, 40, 40], [7.0] * 5)
    assert [line is not None for line in said] == [False, True, False, True, False]
    assert "ending after epoch 40" in said[3]
    exact = Schedule.plan(30, 10, 0.1, "exact")  # no budget: the time moves with the speed
    said = _news_over(exact, [30] * 5, [10.0, 10.0, 10.0, 11.0, 30.0])
    assert [line is not None for line in said] == [False, True, False, False, True]


def test_material_means_the_end_moves_by_a_tenth_of_the_run_and_a_minute():
    said = Estimate(end_epoch=80, total_seconds=540.0)
    assert not said.differs_materially(Estimate(60, 540.0))  # fewer epochs, same end: the budget at a slower speed
    assert not said.differs_materially(Estimate(80, 590.0))  # under a minute
    assert said.differs_materially(Estimate(80, 610.0)) and said.differs_materially(Estimate(40, 280.0))
    long_run = Estimate(end_epoch=80, total_seconds=7200.0)
    assert not long_run.differs_materially(Estimate(80, 7500.0))  # 5 min of 2 h is not a tenth
    assert long_run.differs_materially(Estimate(80, 8000.0))


def test_without_a_terminal_each_epoch_is_one_short_log_line(caplog):
    with caplog.at_level(logging.INFO, logger="vidcls"), RunProgress(True, steps_per_epoch=3, end_epoch=5) as progress:
        for loss in (0.9, 0.8, 0.7):
            progress.step(loss)
        progress.epoch_done({"epoch": 1, "train_loss": 0.8, "val_accuracy": 0.75}, end_epoch=4, seconds_left=90.0)
    assert progress.per_epoch_lines  # pytest's stderr is not a terminal: no bar
    assert caplog.messages == ["epoch 1/4: loss 0.800, val accuracy 0.750, 90 s left"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vidcls"), RunProgress(False, 3, 5) as silent:
        silent.epoch_done({"epoch": 1, "train_loss": 0.8}, end_epoch=5, seconds_left=300.0)
    assert caplog.messages == []
